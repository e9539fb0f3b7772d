"""Change tracking: PropertyCollector filters read with WaitForUpdatesEx, as labsync uses them."""

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

import vsphere

PC = vmodl.query.PropertyCollector
# Bounds the update loops so a server that never reports completion fails instead of hanging.
MAX_ROUNDS = 200


@pytest.fixture
def collector(si):
    """A private PropertyCollector, destroyed afterwards (its filters go with it)."""
    pc = si.RetrieveContent().propertyCollector.CreatePropertyCollector()
    yield pc
    pc.DestroyPropertyCollector()


@pytest.fixture
def victim(si, topology, labs, vm_named, fresh_name):
    """A powered-off full clone of the powered-off source."""
    source = vm_named(topology.powered_off_source)
    return vsphere.run(vsphere.clone(source, fresh_name("watched"), labs.folder, labs.pool, {},
                                     power_on=False))


def _filter(pc, obj, paths):
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=obj, skip=False)],
                         propSet=[PC.PropertySpec(type=type(obj), pathSet=paths, all=False)])
    return pc.CreateFilter(spec, partialUpdates=False)


def _changes(update, flt):
    """(kind, obj, {name: val}) of every object update of one filter in an UpdateSet."""
    out = []
    for filter_update in update.filterSet or []:
        assert filter_update.filter == flt, "an update names a filter we did not create"
        for obj_update in filter_update.objectSet or []:
            values = {c.name: c.val for c in obj_update.changeSet or []}
            out.append((obj_update.kind, obj_update.obj, values))
    return out


def test_wait_for_updates_ex_follows_a_task_to_success(si, topology, labs, vm_named, collector,
                                                       fresh_name):
    # A full clone is the longest task of the time model, so the task is most likely still
    # running when the filter is created.
    source = vm_named(topology.powered_off_source)
    name = fresh_name("tracked")
    task = vsphere.clone(source, name, labs.folder, labs.pool, {}, power_on=False)
    flt = _filter(collector, task, ["info.state"])
    options = PC.WaitOptions(maxWaitSeconds=5)

    first = collector.WaitForUpdatesEx("", options)
    assert first is not None, "the first WaitForUpdatesEx must report the filter's objects"
    changes = _changes(first, flt)
    assert changes and changes[0][0] == "enter" and changes[0][1] == task
    states = [changes[0][2]["info.state"]]
    version = first.version
    rounds = 0
    while states[-1] not in ("success", "error"):
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"task never finished; states seen: {states}"
        update = collector.WaitForUpdatesEx(version, options)
        if update is None:
            continue
        assert update.version != version, "a new update set must carry a new version"
        version = update.version
        for kind, obj, values in _changes(update, flt):
            assert (kind, obj) == ("modify", task)
            if "info.state" in values:
                states.append(values["info.state"])

    assert states[-1] == "success", states
    rank = {"queued": 0, "running": 1, "success": 2}
    assert [rank[s] for s in states] == sorted(rank[s] for s in states), states
    clone = task.info.result
    assert vsphere.props(si, clone, ["name"])["name"] == name
    # Nothing changes any more: an immediate wait returns no update set.
    assert collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=0)) is None
    flt.DestroyPropertyFilter()


def test_wait_for_updates_ex_reports_a_power_state_change(si, collector, victim):
    flt = _filter(collector, victim, ["runtime.powerState"])
    first = collector.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=5))
    assert _changes(first, flt) == [("enter", victim, {"runtime.powerState": "poweredOff"})]

    vsphere.run(victim.PowerOnVM_Task())

    seen = []
    version = first.version
    for _ in range(MAX_ROUNDS):
        update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=5))
        if update is None:
            continue
        version = update.version
        seen.extend(_changes(update, flt))
        if any(v.get("runtime.powerState") == "poweredOn" for _, _, v in seen):
            break
    assert ("modify", victim, {"runtime.powerState": "poweredOn"}) in seen, seen


def test_a_destroyed_filter_reports_nothing_more(si, collector, victim):
    flt = _filter(collector, victim, ["runtime.powerState"])
    first = collector.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=5))
    assert first is not None
    flt.DestroyPropertyFilter()

    vsphere.run(victim.PowerOnVM_Task())

    assert collector.WaitForUpdatesEx(first.version, PC.WaitOptions(maxWaitSeconds=0)) is None


def test_wait_for_task_follows_a_clone_to_its_result(si, topology, labs, vm_named, fresh_name):
    # pyVim.task.WaitForTask uses CreateFilter, the legacy WaitForUpdates and Task.info.
    source = vm_named(topology.powered_off_source)
    task = vsphere.clone(source, fresh_name("waited"), labs.folder, labs.pool, {},
                         power_on=False)
    assert WaitForTask(task) == "success"
    assert isinstance(task.info.result, vim.VirtualMachine)
    assert task.info.entity == source
