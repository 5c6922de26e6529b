// Package store keeps the counters of DMARC aggregate reports: one row per
// distinct report row, period and policy domain, whose count concurrent
// writers add to (upserts), and the sending state of each period's report.
//
// Two backends share one schema and one implementation over database/sql:
// SQLite (modernc.org/sqlite, pure Go) for one host, and PostgreSQL
// (github.com/jackc/pgx/v5) for several hosts writing to one database.
// The schema is versioned; Open applies the migrations a database lacks.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/authmilter/authmilter/dmarcreport"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Count is an increment of one report row: n more messages of period
// Begin (to End, inclusive) for Policy.Domain with the facts Row.
type Count struct {
	Begin, End time.Time
	Policy     dmarcreport.Policy // the policy as last seen; replaces the stored one
	Row        string             // dmarcreport.Row.Key()
	N          int64
}

// Period is one policy domain's report for one period and its sending
// state.
type Period struct {
	Begin, End time.Time
	Domain     string
	State      State
	Attempts   int
	NextTry    time.Time // when a failed send may be tried again
	SentAt     time.Time
	Messages   int64 // the sum of the rows' counts
}

// State is where a period's report is on its way out.
type State string

// The states.
const (
	StatePending State = "pending" // not sent yet (open or closed)
	StateSent    State = "sent"
	StateFailed  State = "failed" // given up after the last retry
)

// Store is a report database.
type Store struct {
	db      *sql.DB
	dialect dialect
	dsn     string // for messages, without a password
}

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Open opens the store named by dsn and applies missing migrations.
//
// dsn is "sqlite:PATH" (the directory must exist; the file is created) or a
// PostgreSQL URL "postgres://…" / "postgresql://…".
func Open(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("store: %q: no file name", dsn)
		}
		if dir := filepath.Dir(path); dir != "" {
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("store: %s: directory: %w", dsn, err)
			}
		}
		// One writer at a time: WAL lets readers run beside it,
		// busy_timeout waits for the lock instead of failing, and
		// _txlock=immediate takes the write lock when a transaction
		// begins so two writers never deadlock upgrading a read lock.
		q := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
		db, err := sql.Open("sqlite", "file:"+path+q)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", dsn, err)
		}
		s.db, s.dialect, s.dsn = db, sqlite, dsn
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open PostgreSQL: %w", err)
		}
		db.SetMaxOpenConns(8)
		s.db, s.dialect, s.dsn = db, postgres, redact(dsn)
	default:
		return nil, fmt.Errorf("store: %q: want sqlite:PATH or postgres://…", redact(dsn))
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// redact hides a password in a URL for error messages.
func redact(dsn string) string {
	return regexp.MustCompile(`(://[^:/@]*:)[^@]*@`).ReplaceAllString(dsn, "${1}xxx@")
}

// String names the store without secrets.
func (s *Store) String() string { return s.dsn }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q adapts a query written with PostgreSQL's $N placeholders to the
// backend (SQLite numbers them ?N).
func (s *Store) q(query string) string {
	if s.dialect == sqlite {
		return placeholder.ReplaceAllString(query, "?$1")
	}
	return query
}

var placeholder = regexp.MustCompile(`\$([0-9]+)`)

// rowHash keys a row in the index: a row's text can be longer than a
// PostgreSQL index entry allows.
func rowHash(row string) string {
	h := sha256.Sum256([]byte(row))
	return hex.EncodeToString(h[:16])
}

// Add adds counts in one transaction: all of them or none (a crash mid-way
// counts nothing twice and nothing half). Rows are written in a fixed
// order so that concurrent writers on PostgreSQL take row locks in the
// same order and never deadlock.
func (s *Store) Add(ctx context.Context, counts []Count) error {
	if len(counts) == 0 {
		return nil
	}
	cs := append([]Count(nil), counts...)
	type pkey struct {
		begin  int64
		domain string
	}
	policies := map[pkey]Count{}
	for _, c := range cs {
		policies[pkey{c.Begin.Unix(), c.Policy.Domain}] = c // the last seen wins (RFC 9990 §2.1)
	}
	keys := make([]pkey, 0, len(policies))
	for k := range policies {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].begin != keys[j].begin {
			return keys[i].begin < keys[j].begin
		}
		return keys[i].domain < keys[j].domain
	})
	hashes := make([]string, len(cs))
	for i := range cs {
		hashes[i] = rowHash(cs[i].Row)
	}
	idx := make([]int, len(cs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		x, y := cs[idx[a]], cs[idx[b]]
		if x.Begin.Unix() != y.Begin.Unix() {
			return x.Begin.Unix() < y.Begin.Unix()
		}
		if x.Policy.Domain != y.Policy.Domain {
			return x.Policy.Domain < y.Policy.Domain
		}
		return hashes[idx[a]] < hashes[idx[b]]
	})

	return s.tx(ctx, "add counts", func(tx *sql.Tx) error {
		pstmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO report_periods (begin_at, end_at, domain, policy)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (begin_at, domain) DO UPDATE SET policy = excluded.policy`))
		if err != nil {
			return err
		}
		defer pstmt.Close()
		for _, k := range keys {
			c := policies[k]
			pol, err := json.Marshal(c.Policy)
			if err != nil {
				return err
			}
			if _, err := pstmt.ExecContext(ctx, c.Begin.Unix(), c.End.Unix(), c.Policy.Domain, string(pol)); err != nil {
				return err
			}
		}
		rstmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO report_rows (begin_at, domain, row_hash, row_key, n)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (begin_at, domain, row_hash) DO UPDATE SET n = report_rows.n + excluded.n`))
		if err != nil {
			return err
		}
		defer rstmt.Close()
		for _, i := range idx {
			c := cs[i]
			if _, err := rstmt.ExecContext(ctx, c.Begin.Unix(), c.Policy.Domain, hashes[i], c.Row, c.N); err != nil {
				return err
			}
		}
		return nil
	})
}

// tx runs f in a transaction and commits it.
func (s *Store) tx(ctx context.Context, what string, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %s: begin: %w", s.dsn, what, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("store: %s: %s: %w", s.dsn, what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: %s: commit: %w", s.dsn, what, err)
	}
	return nil
}

// Filter selects periods.
type Filter struct {
	Domain       string    // one policy domain, or all
	ClosedBefore time.Time // only periods that ended before this, unless zero
	OpenAt       time.Time // only the period(s) containing this instant, unless zero
}

// Periods lists the stored periods, oldest first.
func (s *Store) Periods(ctx context.Context, f Filter) ([]Period, error) {
	query := `SELECT p.begin_at, p.end_at, p.domain, p.state, p.attempts, p.next_try, p.sent_at,
		COALESCE((SELECT SUM(r.n) FROM report_rows r WHERE r.begin_at = p.begin_at AND r.domain = p.domain), 0)
		FROM report_periods p WHERE 1=1`
	var args []any
	if f.Domain != "" {
		args = append(args, strings.ToLower(f.Domain))
		query += fmt.Sprintf(" AND p.domain = $%d", len(args))
	}
	if !f.ClosedBefore.IsZero() {
		args = append(args, f.ClosedBefore.Unix())
		query += fmt.Sprintf(" AND p.end_at < $%d", len(args))
	}
	if !f.OpenAt.IsZero() {
		args = append(args, f.OpenAt.Unix())
		query += fmt.Sprintf(" AND p.begin_at <= $%d AND p.end_at >= $%d", len(args), len(args))
	}
	query += " ORDER BY p.begin_at, p.domain"
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: list periods: %w", s.dsn, err)
	}
	defer rows.Close()
	var out []Period
	for rows.Next() {
		var p Period
		var b, e, next, sent int64
		if err := rows.Scan(&b, &e, &p.Domain, &p.State, &p.Attempts, &next, &sent, &p.Messages); err != nil {
			return nil, fmt.Errorf("store: %s: list periods: %w", s.dsn, err)
		}
		p.Begin, p.End = time.Unix(b, 0).UTC(), time.Unix(e, 0).UTC()
		p.NextTry, p.SentAt = unixOrZero(next), unixOrZero(sent)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: list periods: %w", s.dsn, err)
	}
	return out, nil
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// ErrNoPeriod is returned for a period and domain the store does not hold.
var ErrNoPeriod = errors.New("store: no such period")

// Report returns the policy and the rows of one period's report, rows in a
// stable order (most messages first, then by key).
func (s *Store) Report(ctx context.Context, begin time.Time, domain string) (dmarcreport.Policy, []dmarcreport.CountedRow, error) {
	var pol dmarcreport.Policy
	var raw string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT policy FROM report_periods WHERE begin_at = $1 AND domain = $2`), begin.Unix(), domain).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return pol, nil, fmt.Errorf("%w: %s at %s", ErrNoPeriod, domain, begin.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return pol, nil, fmt.Errorf("store: %s: report of %s: %w", s.dsn, domain, err)
	}
	if err := json.Unmarshal([]byte(raw), &pol); err != nil {
		return pol, nil, fmt.Errorf("store: %s: policy of %s: %w", s.dsn, domain, err)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT row_key, n FROM report_rows WHERE begin_at = $1 AND domain = $2 ORDER BY n DESC, row_hash`), begin.Unix(), domain)
	if err != nil {
		return pol, nil, fmt.Errorf("store: %s: rows of %s: %w", s.dsn, domain, err)
	}
	defer rows.Close()
	var out []dmarcreport.CountedRow
	for rows.Next() {
		var key string
		var n int64
		if err := rows.Scan(&key, &n); err != nil {
			return pol, nil, fmt.Errorf("store: %s: rows of %s: %w", s.dsn, domain, err)
		}
		r, err := dmarcreport.ParseRow(key)
		if err != nil {
			return pol, nil, fmt.Errorf("store: %s: rows of %s: %w", s.dsn, domain, err)
		}
		out = append(out, dmarcreport.CountedRow{Row: r, Count: n})
	}
	if err := rows.Err(); err != nil {
		return pol, nil, fmt.Errorf("store: %s: rows of %s: %w", s.dsn, domain, err)
	}
	return pol, out, nil
}

// Claim takes the right to send one period's report until until, for
// owner. It succeeds for one caller only among all hosts sharing the
// store: the conditional UPDATE is atomic in both backends, and a claim
// whose holder crashed lapses at until so another host (or a restart)
// sends the report again, with the same Report-ID. A sent or given-up
// report, or one whose retry is not yet due, cannot be claimed.
func (s *Store) Claim(ctx context.Context, begin time.Time, domain, owner string, now, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE report_periods SET claimed_by = $1, claimed_until = $2
		WHERE begin_at = $3 AND domain = $4 AND state = 'pending' AND end_at < $5
		AND claimed_until <= $5 AND next_try <= $5`),
		owner, until.Unix(), begin.Unix(), domain, now.Unix())
	if err != nil {
		return false, fmt.Errorf("store: %s: claim %s: %w", s.dsn, domain, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: %s: claim %s: %w", s.dsn, domain, err)
	}
	return n == 1, nil
}

// MarkSent records that the report was sent, and releases the claim.
func (s *Store) MarkSent(ctx context.Context, begin time.Time, domain, owner string, now time.Time) error {
	return s.finish(ctx, begin, domain, owner, `state = 'sent', sent_at = $1, attempts = attempts + 1`, now.Unix())
}

// MarkFailed records a failed attempt: the report may be tried again at
// next, or, with giveUp, never.
func (s *Store) MarkFailed(ctx context.Context, begin time.Time, domain, owner string, next time.Time, giveUp bool) error {
	state := "pending"
	if giveUp {
		state = "failed"
	}
	return s.finish(ctx, begin, domain, owner, `state = '`+state+`', next_try = $1, attempts = attempts + 1`, next.Unix())
}

func (s *Store) finish(ctx context.Context, begin time.Time, domain, owner, set string, arg int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE report_periods SET `+set+`, claimed_by = '', claimed_until = 0
		WHERE begin_at = $2 AND domain = $3 AND claimed_by = $4`), arg, begin.Unix(), domain, owner)
	if err != nil {
		return fmt.Errorf("store: %s: update %s: %w", s.dsn, domain, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("store: %s: update %s at %s: the claim of %s has lapsed", s.dsn, domain, begin.UTC().Format(time.RFC3339), owner)
	}
	return nil
}

// Prune deletes the periods that ended before before, sent or not, and
// their rows; it returns how many periods went.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, "prune", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM report_rows WHERE begin_at IN
			(SELECT begin_at FROM report_periods WHERE end_at < $1)`), before.Unix()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM report_periods WHERE end_at < $1`), before.Unix())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
