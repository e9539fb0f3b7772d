"""The delta-chain limit of a running source (KB 67186): at 255 levels the next instant clone
fails with a generic SystemError, not a typed fault, and leaves the chain as it was.

A module of its own: it fills one source's chain, so it gets a server of its own.
"""

import pytest
from pyVmomi import vmodl

import vsphere

pytestmark = pytest.mark.vcsim_gap

LIMIT = 255
# Clones are started in batches so the server sees concurrent work without a 255-task burst.
BATCH = 25


def test_instant_clone_at_the_chain_limit_is_a_system_error(si, topology, labs, vm_named,
                                                            fresh_name):
    source = vm_named(topology.running(0))
    depth = vsphere.chain_depth(si, source)
    assert depth < LIMIT

    # Grow to one level below the limit; every one of these clones must succeed.
    while depth < LIMIT - 1:
        count = min(BATCH, LIMIT - 1 - depth)
        names = [fresh_name(f"fill{depth + i}") for i in range(count)]
        vsphere.run_all(si, [vsphere.instant_clone(si, source, n, labs.folder, labs.pool,
                                                   {"labsync.vm": n}) for n in names])
        new_depth = vsphere.chain_depth(si, source)
        assert new_depth == depth + count
        depth = new_depth

    # One more level may or may not be allowed (255 levels of chain vs. 255 deltas); beyond
    # that, cloning must fail.
    outcomes = []
    for attempt in range(2):
        name = fresh_name(f"edge{attempt}")
        try:
            vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool, {}))
            outcomes.append("created")
        except vmodl.fault.SystemError as fault:
            outcomes.append(fault)
            break
    failures = [o for o in outcomes if o != "created"]
    assert failures, f"cloning went past the limit: depth {vsphere.chain_depth(si, source)}"
    fault = failures[0]
    text = f"{fault.reason or ''} {fault.msg or ''}".lower()
    assert "unable to prepare migration" in text, repr(fault)
    depth_at_failure = vsphere.chain_depth(si, source)
    assert depth_at_failure in (LIMIT - 1, LIMIT), depth_at_failure
    assert vsphere.vms_named(si, name) == [], "the failed clone left a VM behind"

    # Hygiene brings the source back into service.
    vsphere.run(source.PromoteDisks_Task(unlink=True))
    assert vsphere.chain_depth(si, source) == 0
    vsphere.run(vsphere.instant_clone(si, source, fresh_name("after"), labs.folder, labs.pool,
                                      {}))
    assert vsphere.chain_depth(si, source) == 1
