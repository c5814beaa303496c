"""A session's life: consent first, retention on a schedule that survives restarts (retention, scheduler),
erasure (crypto-shredding) with its hooks, the data export, and the checks that nothing is left behind
(residue on disk, memory_sweep across replicas). The top of `privacy`: sweeps a team's shares too.
"""
