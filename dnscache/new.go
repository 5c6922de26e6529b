package dnscache

// New builds the resolver the daemon uses from cfg: a Client for the
// configured (or resolv.conf) servers, a Cache in front of it unless
// cfg.CacheSize is negative, and, when cfg.ZoneFile is set, the zone file
// in front of both (Overlay). Zero fields of cfg take the defaults given
// on Config.
//
// The returned Resolver has a method Stats() Stats reporting the cache's
// counters (all zero without a cache).
func New(cfg Config) (Resolver, error) {
	cfg = cfg.withDefaults()
	client, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	var r Resolver = noStats{client}
	if cfg.CacheSize > 0 {
		r = NewCache(client, cfg)
	}
	if cfg.ZoneFile != "" {
		zone, err := LoadZoneFile(cfg.ZoneFile)
		if err != nil {
			return nil, err
		}
		r = Overlay(zone, r)
	}
	return r, nil
}

// noStats gives a Client without cache the Stats method New promises.
type noStats struct{ *Client }

// Stats returns zero counters.
func (noStats) Stats() Stats { return Stats{} }
