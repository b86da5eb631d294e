"""Background jobs beside the data path: repair, scrub, evacuate, rebalance, garbage collection.

Catalog recovery is egide.recovery; export and import are egide.transfer, which runs them as
jobs of this package's runner.

Every job keeps its state in the catalog (egide.maintenance.jobs), so one interrupted by a crash
resumes where it stopped; each action it takes is one conditional catalog change, so doing it
again after a crash does no harm.
"""
