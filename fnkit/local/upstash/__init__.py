"""The Upstash REST protocol served in front of a real Redis (or an embedded fakeredis).

- `bridge`: the HTTP server (`/`, `/pipeline`, `/multi-exec`, tokens, base64 encoding, errors
  as Upstash words them);
- `compat`: where Redis and Upstash answer differently, the bridge answers as Upstash does;
- `state`: what the bridge keeps between requests (SCAN pages, scripts per database);
- `redis_db`: each dev server's own logical Redis database;
- `parity`: `make parity`, upstash-redis's own test suite against the bridge.
"""
