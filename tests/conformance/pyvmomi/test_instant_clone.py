"""Instant clones through pyvmomi: identity, placement, delta chains, concurrency, conflicts.

vcsim does not implement InstantClone_Task, so the whole module is a vcsim gap.
"""

import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

import vsphere

pytestmark = pytest.mark.vcsim_gap

CONCURRENT_CLONES = 6


def _markers(name):
    return {
        "labsync.owner": "labsync-demo",
        "labsync.lab": "conformance",
        "labsync.vm": name,
        "guestinfo.hostname": name,
    }


def _macs(si, vm):
    devices = vsphere.props(si, vm, ["config.hardware.device"])["config.hardware.device"]
    return [d.macAddress for d in devices or [] if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def _destroy(vm):
    vsphere.run(vm.PowerOffVM_Task())
    vsphere.run(vm.Destroy_Task())


def test_instant_clone_is_powered_on_on_the_source_host_with_the_asked_identity(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.running(0))
    source_host = vsphere.props(si, source, ["runtime.host"])["runtime.host"]
    depth_before = vsphere.chain_depth(si, source)
    name = fresh_name("ic")
    bios_uuid = str(uuid.uuid4())

    task = vsphere.instant_clone(si, source, name, labs.folder, labs.pool, _markers(name),
                                 bios_uuid)
    clone = vsphere.run(task)

    assert isinstance(clone, vim.VirtualMachine)
    assert task.info.entity == source
    read = vsphere.props(si, clone, ["name", "parent", "resourcePool", "runtime.powerState",
                                     "runtime.host", "config.uuid"])
    assert read["name"] == name
    assert read["parent"] == labs.folder
    assert read["resourcePool"] == labs.pool
    assert read["runtime.powerState"] == "poweredOn"
    assert read["runtime.host"] == source_host
    assert read["config.uuid"].lower() == bios_uuid.lower()
    assert _markers(name).items() <= vsphere.extra_config(si, clone).items()
    assert vsphere.chain_depth(si, source) == depth_before + 1
    assert vsphere.vms_named(si, name) == [clone]


def test_instant_clone_has_its_own_delta_over_the_source_base(si, topology, labs, vm_named,
                                                              fresh_name):
    source = vm_named(topology.running(1))
    name = fresh_name("own")
    clone = vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                              _markers(name)))
    source_chain = vsphere.chain_files(si, source)
    clone_chain = vsphere.chain_files(si, clone)
    assert len(clone_chain) - 1 >= 1, f"an instant clone writes to a delta: {clone_chain}"
    assert clone_chain[0] == source_chain[0], "an instant clone shares the source's base disk"
    source_files = {f for level in source_chain for f in level}
    assert not set(clone_chain[-1]) & source_files, "the clone's top delta is its own"


def test_instant_clone_gets_fresh_mac_addresses(si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.running(1))
    name = fresh_name("mac")
    clone = vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                              _markers(name)))
    source_macs = _macs(si, source)
    clone_macs = _macs(si, clone)
    assert source_macs, "the source has no network card to compare"
    assert len(clone_macs) == len(source_macs)
    assert not set(clone_macs) & set(source_macs), (clone_macs, source_macs)


def test_instant_clone_of_a_frozen_source_leaves_its_chain_unchanged(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.frozen_sources[0])
    source_host = vsphere.props(si, source, ["runtime.host"])["runtime.host"]
    chain_before = vsphere.chain_files(si, source)
    name = fresh_name("frozen")

    clone = vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                              _markers(name)))

    read = vsphere.props(si, clone, ["runtime.powerState", "runtime.host"])
    assert read["runtime.powerState"] == "poweredOn"
    assert read["runtime.host"] == source_host
    assert vsphere.chain_files(si, source) == chain_before
    assert _markers(name).items() <= vsphere.extra_config(si, clone).items()


def test_destroying_instant_clones_does_not_shorten_the_source_chain(si, topology, labs,
                                                                     vm_named, fresh_name):
    source = vm_named(topology.running(0))
    name = fresh_name("gone")
    clone = vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                              _markers(name)))
    depth_with_clone = vsphere.chain_depth(si, source)
    _destroy(clone)
    assert vsphere.vms_named(si, name) == []
    assert vsphere.chain_depth(si, source) == depth_with_clone


def test_concurrent_instant_clones_of_one_source_all_succeed_and_add_one_level_each(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.running(2))
    depth_before = vsphere.chain_depth(si, source)
    names = [fresh_name(f"par{i}") for i in range(CONCURRENT_CLONES)]

    # All tasks are started before any is waited for, so they overlap on the server.
    tasks = [vsphere.instant_clone(si, source, n, labs.folder, labs.pool, _markers(n))
             for n in names]
    clones = vsphere.run_all(si, tasks)

    assert len(set(clones)) == CONCURRENT_CLONES
    for name, clone in zip(names, clones):
        assert vsphere.props(si, clone, ["name"])["name"] == name
        assert vsphere.power_state(si, clone) == "poweredOn"
    assert vsphere.chain_depth(si, source) == depth_before + CONCURRENT_CLONES


def test_a_second_instant_clone_with_the_same_name_is_duplicate_name(si, topology, labs,
                                                                     vm_named, fresh_name):
    source = vm_named(topology.running(0))
    name = fresh_name("dup")
    first = vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                              _markers(name)))
    depth_before = vsphere.chain_depth(si, source)

    # vCenter accepts the call and reports the conflict as the task's error.
    fault = vsphere.task_fault(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                                     _markers(name)))
    assert isinstance(fault, vim.fault.DuplicateName), repr(fault)
    assert fault.name == name
    assert fault.object == first
    assert vsphere.vms_named(si, name) == [first]
    assert vsphere.chain_depth(si, source) == depth_before, "a refused clone left a delta"


def test_instant_clone_of_a_powered_off_source_fails_and_creates_nothing(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.powered_off_source)
    name = fresh_name("off")
    try:
        fault = vsphere.task_fault(vsphere.instant_clone(si, source, name, labs.folder,
                                                         labs.pool, _markers(name)))
    except (vim.fault.InvalidState, vim.fault.InvalidVmState) as raised:
        fault = raised
    assert isinstance(fault, (vim.fault.InvalidState, vim.fault.InvalidVmState)), repr(fault)
    assert vsphere.vms_named(si, name) == []


def test_one_marker_can_be_read_by_its_extra_config_key(si, topology, labs, vm_named,
                                                        fresh_name):
    # vCenter selects one element of a keyed array with `["key"]` in a property path.
    source = vm_named(topology.running(1))
    name = fresh_name("keyed")
    clone = vsphere.run(vsphere.instant_clone(si, source, name, labs.folder, labs.pool,
                                              _markers(name)))
    path = 'config.extraConfig["labsync.vm"]'
    value = vsphere.props(si, clone, [path])[path]
    assert isinstance(value, vim.option.OptionValue), repr(value)
    assert (value.key, value.value) == ("labsync.vm", name)


def _check_instant_clone(si, source, name, labs):
    """Runs CheckInstantClone_Task; returns (result list, task fault or None)."""
    checker = si.RetrieveContent().vmProvisioningChecker
    spec = vim.vm.InstantCloneSpec(name=name,
                                   location=vim.vm.RelocateSpec(folder=labs.folder,
                                                                pool=labs.pool))
    task = checker.CheckInstantClone_Task(vm=source, spec=spec)
    state = WaitForTask(task, raiseOnError=False)
    info = task.info
    if state == "error":
        return [], info.error
    return list(info.result or []), None


def test_check_instant_clone_finds_nothing_wrong_with_a_valid_spec_and_changes_nothing(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.running(1))
    depth_before = vsphere.chain_depth(si, source)
    name = fresh_name("checked")

    results, fault = _check_instant_clone(si, source, name, labs)

    assert fault is None, repr(fault)
    assert results, "a check returns one CheckResult per checked VM"
    assert all(isinstance(r, vim.vm.check.Result) for r in results)
    assert [list(r.error or []) for r in results] == [[]] * len(results)
    assert vsphere.vms_named(si, name) == []
    assert vsphere.chain_depth(si, source) == depth_before


def test_check_instant_clone_reports_a_powered_off_source(si, topology, labs, vm_named,
                                                          fresh_name):
    source = vm_named(topology.powered_off_source)
    name = fresh_name("check-off")

    results, fault = _check_instant_clone(si, source, name, labs)

    # vCenter lists the problems in CheckResult.error; failing the check task also reports it.
    problems = [e for r in results for e in (r.error or [])] + ([fault] if fault else [])
    assert any(isinstance(p, (vim.fault.InvalidState, vim.fault.InvalidVmState))
               for p in problems), problems
    assert vsphere.vms_named(si, name) == []
