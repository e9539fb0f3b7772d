"""Linked and full clones through CloneVM_Task, and name conflicts in a folder."""

import pytest
from pyVmomi import vim

import vsphere

MARKERS = {"labsync.owner": "labsync-demo", "labsync.lab": "conformance",
           "guestinfo.hostname": "conformance-clone"}


def _snapshot(si, vm, name):
    tree = vsphere.props(si, vm, ["snapshot"])["snapshot"]
    assert tree is not None, "the source has no snapshot"
    found = []
    stack = list(tree.rootSnapshotList)
    while stack:
        node = stack.pop()
        if node.name == name:
            found.append(node.snapshot)
        stack.extend(node.childSnapshotList or [])
    assert len(found) == 1, f"expected one snapshot named {name!r}, found {found}"
    return found[0]


def _all_files(levels):
    return {name for level in levels for name in level}


@pytest.mark.vcsim_gap
def test_linked_clone_shares_the_snapshot_disk_and_leaves_the_source_chain_alone(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.snapshot_source)
    snapshot = _snapshot(si, source, topology.snapshot_name)
    source_chain = vsphere.chain_files(si, source)
    name = fresh_name("linked")

    clone = vsphere.run(vsphere.clone(source, name, labs.folder, labs.pool, MARKERS,
                                      power_on=True, snapshot=snapshot))

    assert isinstance(clone, vim.VirtualMachine)
    read = vsphere.props(si, clone, ["name", "parent", "resourcePool", "runtime.powerState"])
    assert read["name"] == name
    assert read["parent"] == labs.folder
    assert read["resourcePool"] == labs.pool
    assert read["runtime.powerState"] == "poweredOn"
    assert MARKERS.items() <= vsphere.extra_config(si, clone).items()
    clone_chain = vsphere.chain_files(si, clone)
    assert len(clone_chain) >= 2, f"a linked clone needs a delta over a parent: {clone_chain}"
    assert clone_chain[0] == source_chain[0], "a linked clone shares the source's base disk"
    assert not set(clone_chain[-1]) & _all_files(source_chain), "the clone's delta is its own"
    assert vsphere.chain_files(si, source) == source_chain


def test_full_clone_gets_independent_disks(si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.powered_off_source)
    source_chain = vsphere.chain_files(si, source)
    name = fresh_name("full")

    clone = vsphere.run(vsphere.clone(source, name, labs.folder, labs.pool, MARKERS,
                                      power_on=False))

    read = vsphere.props(si, clone, ["name", "parent", "resourcePool", "runtime.powerState"])
    assert read["name"] == name
    assert read["parent"] == labs.folder
    assert read["resourcePool"] == labs.pool
    assert read["runtime.powerState"] == "poweredOff"
    assert MARKERS.items() <= vsphere.extra_config(si, clone).items()
    clone_chain = vsphere.chain_files(si, clone)
    assert len(clone_chain) - 1 == 0, f"a full clone has no delta levels: {clone_chain}"
    assert not _all_files(clone_chain) & _all_files(source_chain), "a full clone shares no file"
    assert vsphere.chain_files(si, source) == source_chain


@pytest.mark.vcsim_gap
def test_full_clone_powered_on_runs_on_a_host_of_the_cluster(si, topology, labs, vm_named,
                                                             fresh_name):
    source = vm_named(topology.powered_off_source)
    clone = vsphere.run(vsphere.clone(source, fresh_name("full-on"), labs.folder, labs.pool, {},
                                      power_on=True))
    read = vsphere.props(si, clone, ["runtime.powerState", "runtime.host"])
    assert read["runtime.powerState"] == "poweredOn"
    host_name = vsphere.props(si, read["runtime.host"], ["name"])["name"]
    assert host_name in topology.hosts


@pytest.mark.vcsim_gap
def test_a_second_clone_with_the_same_name_in_the_same_folder_is_duplicate_name(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.powered_off_source)
    name = fresh_name("dup")
    first = vsphere.run(vsphere.clone(source, name, labs.folder, labs.pool, {}, power_on=False))

    # vCenter accepts the call and reports the conflict as the task's error.
    fault = vsphere.task_fault(
        vsphere.clone(source, name, labs.folder, labs.pool, {}, power_on=False))
    assert isinstance(fault, vim.fault.DuplicateName), repr(fault)
    assert fault.name == name
    assert fault.object == first
    assert vsphere.vms_named(si, name) == [first]
