"""Small pyvmomi helpers the checks share: explicit property-collector reads, lookups by name,
task waiting and delta-chain arithmetic.

Reads go through RetrievePropertiesEx on purpose (not pyvmomi's lazy attribute access, which uses
the undocumented `Fetch` method), so a failure names the vim25 call that broke. The lazy path has
its own check in test_session.py.
"""

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

from pyVim.task import WaitForTask, WaitForTasks
from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector


@dataclass
class Row:
    """One object of a property read: its reference, properties and missing paths."""

    obj: Any
    props: Dict[str, Any]
    missing: Dict[str, Any]


def _rows(result) -> List[Row]:
    rows = []
    for content in result.objects or []:
        props = {p.name: p.val for p in content.propSet or []}
        missing = {m.path: m.fault for m in content.missingSet or []}
        rows.append(Row(obj=content.obj, props=props, missing=missing))
    return rows


def retrieve_all(pc, spec, max_objects: Optional[int] = None) -> List[Row]:
    """RetrievePropertiesEx plus every ContinueRetrievePropertiesEx page."""
    options = PC.RetrieveOptions(maxObjects=max_objects) if max_objects else PC.RetrieveOptions()
    result = pc.RetrievePropertiesEx(specSet=[spec], options=options)
    rows: List[Row] = []
    while result is not None:
        rows.extend(_rows(result))
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(token=result.token)
    return rows


def view_spec(view, obj_type, paths: Sequence[str]):
    """A PropertyFilterSpec reading `paths` of every `obj_type` in a container view."""
    traverse = PC.TraversalSpec(name="traverseEntities", type=vim.view.ContainerView,
                                path="view", skip=False)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[PC.PropertySpec(type=obj_type, pathSet=list(paths), all=False)],
    )


def read_view(si, obj_type, paths: Sequence[str], max_objects: Optional[int] = None) -> List[Row]:
    """Reads `paths` of every `obj_type` below the root folder through a container view."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [obj_type], True)
    try:
        return retrieve_all(content.propertyCollector, view_spec(view, obj_type, paths),
                            max_objects)
    finally:
        view.DestroyView()


def props(si, obj, paths: Sequence[str]) -> Dict[str, Any]:
    """Reads `paths` of one object; a missing path is an assertion failure naming its fault."""
    content = si.RetrieveContent()
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj, skip=False)],
        propSet=[PC.PropertySpec(type=type(obj), pathSet=list(paths), all=False)],
    )
    rows = retrieve_all(content.propertyCollector, spec)
    assert len(rows) == 1, f"reading {list(paths)} of {obj} returned {len(rows)} objects"
    assert not rows[0].missing, f"missing properties of {obj}: {rows[0].missing}"
    return rows[0].props


def by_name(si, obj_type, name: str):
    """The one object of `obj_type` with this name; an assertion failure if not exactly one."""
    found = [r.obj for r in read_view(si, obj_type, ["name"]) if r.props.get("name") == name]
    assert len(found) == 1, f"expected one {obj_type.__name__} named {name!r}, found {found}"
    return found[0]


def names(si, obj_type) -> List[str]:
    """Names of every object of a type, sorted."""
    return sorted(r.props["name"] for r in read_view(si, obj_type, ["name"]))


def vms_named(si, name: str) -> list:
    """Every VM with this name (zero, one, or more if the server allowed a duplicate)."""
    return [r.obj for r in read_view(si, vim.VirtualMachine, ["name"])
            if r.props.get("name") == name]


def run(task):
    """Waits for a task with pyVim's WaitForTask (raises its fault) and returns its result."""
    state = WaitForTask(task)
    assert state == vim.TaskInfo.State.success, f"task ended {state}"
    return task.info.result


def run_all(si, tasks: Iterable) -> list:
    """Waits for several tasks at once and returns their results in order."""
    tasks = list(tasks)
    WaitForTasks(tasks, si=si)
    infos = [t.info for t in tasks]
    for info in infos:
        assert info.state == vim.TaskInfo.State.success, f"{info.task} ended {info.state}"
    return [info.result for info in infos]


def chain_depth(si, vm, disk_index: int = 0) -> int:
    """Delta depth of a disk: `len(layoutEx.disk[i].chain) - 1`."""
    disks = props(si, vm, ["layoutEx.disk"])["layoutEx.disk"]
    assert disks, f"{vm} has no layoutEx.disk"
    return len(disks[disk_index].chain) - 1


def chain_files(si, vm, disk_index: int = 0) -> List[List[str]]:
    """The file names of each level of a disk's chain, base first (file keys are per VM)."""
    read = props(si, vm, ["layoutEx.disk", "layoutEx.file"])
    files = {f.key: f.name for f in read["layoutEx.file"] or []}
    disks = read["layoutEx.disk"]
    assert disks, f"{vm} has no layoutEx.disk"
    levels = []
    for level in disks[disk_index].chain:
        keys = list(level.fileKey)
        unknown = [k for k in keys if k not in files]
        assert not unknown, f"{vm}: chain names file keys {unknown} absent from layoutEx.file"
        levels.append([files[k] for k in keys])
    return levels


def extra_config(si, vm) -> Dict[str, Any]:
    """A VM's config.extraConfig as a dict."""
    entries = props(si, vm, ["config.extraConfig"])["config.extraConfig"] or []
    return {o.key: o.value for o in entries}


def task_fault(task):
    """Waits for a task that must fail and returns its fault (an exception instance)."""
    state = WaitForTask(task, raiseOnError=False)
    info = task.info
    assert state == vim.TaskInfo.State.error, f"task {info.descriptionId} ended {state}"
    assert info.error is not None, "failed task carries no error"
    return info.error


def option_values(entries: Dict[str, str]) -> list:
    """OptionValue[] for a clone spec's config (instant clone) or extraConfig (clone)."""
    return [vim.option.OptionValue(key=k, value=v) for k, v in entries.items()]


def instant_clone(si, source, name: str, folder, pool, extra: Dict[str, str],
                  bios_uuid: Optional[str] = None):
    """Starts InstantClone_Task the way labsync does: location, config entries, biosUuid."""
    spec = vim.vm.InstantCloneSpec(
        name=name,
        location=vim.vm.RelocateSpec(folder=folder, pool=pool),
        config=option_values(extra),
    )
    if bios_uuid is not None:
        spec.biosUuid = bios_uuid
    return source.InstantClone_Task(spec=spec)


def clone(source, name: str, folder, pool, extra: Dict[str, str], power_on: bool,
          snapshot=None):
    """Starts CloneVM_Task: linked (child disk backing of `snapshot`) if given one, else full."""
    location = vim.vm.RelocateSpec(pool=pool)
    if snapshot is not None:
        location.diskMoveType = "createNewChildDiskBacking"
    spec = vim.vm.CloneSpec(
        location=location, template=False, powerOn=power_on, snapshot=snapshot,
        config=vim.vm.ConfigSpec(extraConfig=option_values(extra)),
    )
    return source.CloneVM_Task(folder=folder, name=name, spec=spec)


def power_state(si, vm) -> str:
    """runtime.powerState of a VM."""
    return props(si, vm, ["runtime.powerState"])["runtime.powerState"]
