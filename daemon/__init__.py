"""regen.daemon: the client agent `regend`.

Pure:   plan (target vs disk -> Plan), scan.classify (stat verdict), target.merge_overlay,
        startcheck.decide_start, schedule.splay/next_delay, config parsing.
I/O:    index (SQLite system log), scan (walk + xxh3), apply (confined atomic writes), fsops
        (openat-style SafeRoot), cache + fetch (local objects), quarantine, monitor (ref and
        overlay records), reporting, lock, hardware (behind the HardwareProbe protocol).
Wiring: agent (one run; its steps in session, accept, repair, update, writer, steps, scope,
        space), dryrun (check/status), schedule (long-running), cli/__main__ (the edge).
"""
