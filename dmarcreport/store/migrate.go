package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are the schema's versions, applied in order; an applied
// migration is never edited, a change is a new one. The same SQL runs on
// SQLite and PostgreSQL.
var migrations = [][]string{
	// 1: the counters and the sending state.
	{`CREATE TABLE report_periods (
		begin_at      BIGINT NOT NULL,
		end_at        BIGINT NOT NULL,
		domain        TEXT   NOT NULL,
		policy        TEXT   NOT NULL,
		state         TEXT   NOT NULL DEFAULT 'pending',
		attempts      INTEGER NOT NULL DEFAULT 0,
		next_try      BIGINT NOT NULL DEFAULT 0,
		claimed_by    TEXT   NOT NULL DEFAULT '',
		claimed_until BIGINT NOT NULL DEFAULT 0,
		sent_at       BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (begin_at, domain)
	)`,
		`CREATE TABLE report_rows (
		begin_at BIGINT NOT NULL,
		domain   TEXT   NOT NULL,
		row_hash TEXT   NOT NULL,
		row_key  TEXT   NOT NULL,
		n        BIGINT NOT NULL,
		PRIMARY KEY (begin_at, domain, row_hash)
	)`,
		`CREATE INDEX report_periods_end ON report_periods (end_at)`},
}

// advisoryKey is the PostgreSQL advisory lock all authmilter hosts take
// while migrating ("authmilter reports" as a number).
const advisoryKey int64 = 0x6175746872707473

// migrate applies the migrations the database lacks, all in one
// transaction with their version rows (DDL is transactional in both
// backends). On PostgreSQL an advisory lock keeps two hosts starting
// together from applying the same migration twice; SQLite's write lock,
// taken at BEGIN (_txlock=immediate), does the same.
func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, "migrate", func(tx *sql.Tx) error {
		if s.dialect == postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryKey); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		for i, m := range migrations {
			version := i + 1
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = $1`), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			for _, stmt := range m {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", version, err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`), version, time.Now().Unix()); err != nil {
				return fmt.Errorf("migration %d: %w", version, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: %s: schema version: %w", s.dsn, err)
	}
	return int(v.Int64), nil
}
