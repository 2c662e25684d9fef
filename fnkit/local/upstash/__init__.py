"""The Upstash REST protocol served in front of a real Redis (or an embedded fakeredis).

- `bridge`: serving it (the HTTP server, keep-alive, fault switches, `python -m` entry);
- `rest_app`: the WSGI app (`/`, `/pipeline`, `/multi-exec`, tokens, read-your-writes);
- `commands`: a command from JSON to Redis and its reply back (base64, errors as Upstash
  words them);
- `compat`: where Redis and Upstash answer differently, the bridge answers as Upstash does;
- `state`: what the bridge keeps between requests (SCAN pages, scripts per database);
- `redis_db`: each dev server's own logical Redis database;
- `parity`: `make parity`, upstash-redis's own test suite against the bridge.
"""
