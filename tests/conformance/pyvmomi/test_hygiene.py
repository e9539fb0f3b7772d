"""Delta-chain hygiene: the snapshot cycle and PromoteDisks_Task collapse a source's chain."""

import pytest
from pyVmomi import vim

import vsphere

GROWTH = 3


def _grow(si, source, labs, fresh_name, count=GROWTH):
    """Adds `count` delta levels to a running source with instant clones; returns them."""
    tasks = [vsphere.instant_clone(si, source, n, labs.folder, labs.pool, {"labsync.vm": n})
             for n in (fresh_name(f"grow{i}") for i in range(count))]
    return vsphere.run_all(si, tasks)


def _snapshot_names(si, vm):
    tree = vsphere.props(si, vm, ["snapshot"]).get("snapshot")
    out, stack = [], list(tree.rootSnapshotList) if tree else []
    while stack:
        node = stack.pop()
        out.append(node.name)
        stack.extend(node.childSnapshotList or [])
    return out


def test_create_snapshot_then_remove_all_leaves_no_snapshot_and_the_vm_running(
        si, topology, vm_named):
    source = vm_named(topology.running(1))

    snapshot = vsphere.run(source.CreateSnapshot_Task(name="hygiene", description="conformance",
                                                      memory=False, quiesce=False))
    assert isinstance(snapshot, vim.vm.Snapshot)
    assert _snapshot_names(si, source) == ["hygiene"]

    vsphere.run(source.RemoveAllSnapshots_Task(consolidate=True))
    assert _snapshot_names(si, source) == []
    assert vsphere.power_state(si, source) == "poweredOn"


@pytest.mark.vcsim_gap
def test_a_snapshot_adds_a_level_and_removing_all_snapshots_consolidates_it(
        si, topology, vm_named):
    source = vm_named(topology.running(1))
    depth_before = vsphere.chain_depth(si, source)

    vsphere.run(source.CreateSnapshot_Task(name="level", memory=False, quiesce=False))
    assert vsphere.chain_depth(si, source) == depth_before + 1

    vsphere.run(source.RemoveAllSnapshots_Task(consolidate=True))
    assert vsphere.chain_depth(si, source) == 0


@pytest.mark.vcsim_gap
def test_snapshot_cycle_resets_the_chain_that_instant_clones_grew(si, topology, labs, vm_named,
                                                                  fresh_name):
    source = vm_named(topology.running(0))
    depth_before = vsphere.chain_depth(si, source)
    clones = _grow(si, source, labs, fresh_name)
    assert vsphere.chain_depth(si, source) == depth_before + GROWTH

    vsphere.run(source.CreateSnapshot_Task(name="cycle", memory=False, quiesce=False))
    vsphere.run(source.RemoveAllSnapshots_Task(consolidate=True))

    assert vsphere.chain_depth(si, source) == 0
    # The clones keep running on the deltas they use.
    assert [vsphere.power_state(si, c) for c in clones] == ["poweredOn"] * GROWTH


@pytest.mark.vcsim_gap
def test_promote_disks_resets_the_chain_that_instant_clones_grew(si, topology, labs, vm_named,
                                                                 fresh_name):
    source = vm_named(topology.running(2))
    depth_before = vsphere.chain_depth(si, source)
    clones = _grow(si, source, labs, fresh_name)
    assert vsphere.chain_depth(si, source) == depth_before + GROWTH

    assert vsphere.run(source.PromoteDisks_Task(unlink=True)) is None

    assert vsphere.chain_depth(si, source) == 0
    assert vsphere.power_state(si, source) == "poweredOn"
    assert [vsphere.power_state(si, c) for c in clones] == ["poweredOn"] * GROWTH


@pytest.mark.vcsim_gap
def test_promote_disks_unlinks_a_linked_clone_from_its_parent_disk(si, topology, labs, vm_named,
                                                                   fresh_name):
    source = vm_named(topology.snapshot_source)
    tree = vsphere.props(si, source, ["snapshot"])["snapshot"]
    base = [n.snapshot for n in tree.rootSnapshotList if n.name == topology.snapshot_name]
    assert len(base) == 1
    linked = vsphere.run(vsphere.clone(source, fresh_name("linked"), labs.folder, labs.pool, {},
                                       power_on=False, snapshot=base[0]))
    assert vsphere.chain_depth(si, linked) >= 1
    source_files = {f for level in vsphere.chain_files(si, source) for f in level}

    vsphere.run(linked.PromoteDisks_Task(unlink=True))

    assert vsphere.chain_depth(si, linked) == 0
    linked_files = {f for level in vsphere.chain_files(si, linked) for f in level}
    assert not linked_files & source_files, "an unlinked clone still uses the source's files"


def _snapshot_named(si, vm, name):
    tree = vsphere.props(si, vm, ["snapshot"]).get("snapshot")
    stack = list(tree.rootSnapshotList) if tree else []
    while stack:
        node = stack.pop()
        if node.name == name:
            return node.snapshot
        stack.extend(node.childSnapshotList or [])
    return None


def test_remove_snapshot_removes_that_snapshot_and_keeps_the_one_before_it(
        si, topology, vm_named):
    source = vm_named(topology.running(1))
    before = _snapshot_names(si, source)
    person = vsphere.run(source.CreateSnapshot_Task(name="person", memory=False, quiesce=False))
    ours = vsphere.run(source.CreateSnapshot_Task(name="labsync-hygiene", memory=False,
                                                  quiesce=False))
    assert _snapshot_names(si, source) == before + ["person", "labsync-hygiene"]

    assert vsphere.run(ours.RemoveSnapshot_Task(removeChildren=True, consolidate=True)) is None

    assert _snapshot_names(si, source) == before + ["person"]
    current = vsphere.props(si, source, ["snapshot"])["snapshot"].currentSnapshot
    assert current == person
    vsphere.run(person.RemoveSnapshot_Task(removeChildren=True, consolidate=True))
    assert _snapshot_names(si, source) == before
    assert vsphere.power_state(si, source) == "poweredOn"


@pytest.mark.vcsim_gap
def test_the_seeds_snapshot_cycle_collapses_the_chain_down_to_a_persons_snapshot(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.running(0))
    depth_before = vsphere.chain_depth(si, source)
    vsphere.run(source.CreateSnapshot_Task(name="person", memory=False, quiesce=False))
    _grow(si, source, labs, fresh_name)
    assert vsphere.chain_depth(si, source) == depth_before + 1 + GROWTH

    ours = vsphere.run(source.CreateSnapshot_Task(name="cycle", memory=False, quiesce=False))
    vsphere.run(ours.RemoveSnapshot_Task(removeChildren=True, consolidate=True))

    # Down to the person's snapshot (the chain it froze) plus one delta.
    assert vsphere.chain_depth(si, source) == depth_before + 1
    assert _snapshot_named(si, source, "cycle") is None
    person = _snapshot_named(si, source, "person")
    assert person is not None
    vsphere.run(person.RemoveSnapshot_Task(removeChildren=True, consolidate=True))
    assert vsphere.chain_depth(si, source) == 0
