"""`fnkit bench`: what a function costs, measured beside its floor or peer in one run.

Modules, one measurement each: `overhead` (pipeline cost in process), `roundtrips` (counting
TCP proxies, `proxy`), `coldstart` (launch to first answer, imports, memory), `load` (16
clients; `floor`, `loadgen`, `peers/`), `growth` (1k to 100k tasks); `services` and `servers`
set up what they share, `report` prints the table and writes the JSON, `runner` runs them.
Dev tooling only: nothing here is imported by `shared/` or bundled with a function.
"""
