"""Operations observed while they are in flight. This module's simulator runs the real-world
time model (`--time-scale 1`): a full clone takes minutes and an instant clone seconds, windows
wide enough that the checks below do not race the server.
"""

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

import simserver
import vsphere
from conftest import stop_checked

pytestmark = pytest.mark.vcsim_gap

IN_FLIGHT_CLONES = 5
# Bounds a wait on a server that ignores the cancel, instead of hanging for its full clone time.
CANCEL_WAIT_S = 120


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Overrides the suite's server for this module: same inventory, real-world durations."""
    server = simserver.start(tmp_path_factory.mktemp("in-flight"), time_scale="1")
    yield server
    stop_checked(server)


def test_a_running_clone_is_among_the_source_recent_tasks(si, topology, labs, vm_named,
                                                         fresh_name):
    source = vm_named(topology.powered_off_source)
    task = vsphere.clone(source, fresh_name("recent"), labs.folder, labs.pool, {},
                         power_on=False)
    info = vsphere.props(si, task, ["info"])["info"]
    assert info.state in ("queued", "running"), info.state
    assert task in vsphere.props(si, source, ["recentTask"])["recentTask"]


def test_a_running_full_clone_can_be_cancelled_and_leaves_no_vm(si, topology, labs, vm_named,
                                                                fresh_name):
    # vCenter lets a clone be cancelled while it copies; the copy is rolled back.
    source = vm_named(topology.powered_off_source)
    name = fresh_name("cancel")
    task = vsphere.clone(source, name, labs.folder, labs.pool, {}, power_on=False)

    info = vsphere.props(si, task, ["info"])["info"]
    assert info.state in ("queued", "running"), info.state
    assert info.cancelable is True

    task.CancelTask()
    state = WaitForTask(task, raiseOnError=False, maxWaitTime=CANCEL_WAIT_S)

    assert state == "error"
    info = task.info
    assert isinstance(info.error, vmodl.fault.RequestCanceled), repr(info.error)
    assert info.cancelled is True
    assert vsphere.vms_named(si, name) == [], "a cancelled clone left a VM behind"


def test_hygiene_while_clones_of_the_source_are_in_flight_is_task_in_progress(
        si, topology, labs, vm_named, fresh_name):
    source = vm_named(topology.running(0))
    depth_before = vsphere.chain_depth(si, source)
    names = [fresh_name(f"busy{i}") for i in range(IN_FLIGHT_CLONES)]
    clones = [vsphere.instant_clone(si, source, n, labs.folder, labs.pool, {"labsync.vm": n})
              for n in names]

    for start_hygiene in (lambda: source.PromoteDisks_Task(unlink=True),
                          lambda: source.CreateSnapshot_Task(name="busy", memory=False,
                                                             quiesce=False)):
        # A synchronous fault or a task that fails with it: both refuse the operation.
        try:
            fault = vsphere.task_fault(start_hygiene())
        except vim.fault.TaskInProgress as raised:
            fault = raised
        assert isinstance(fault, vim.fault.TaskInProgress), repr(fault)

    vsphere.run_all(si, clones)
    assert vsphere.chain_depth(si, source) == depth_before + IN_FLIGHT_CLONES
    assert vsphere.props(si, source, ["snapshot"]).get("snapshot") is None, "refused, yet made"

    # Once the clones are done, the same hygiene runs.
    vsphere.run(source.PromoteDisks_Task(unlink=True))
    assert vsphere.chain_depth(si, source) == 0


def test_clones_beyond_the_per_host_limit_wait_queued_and_then_all_succeed(
        si, topology, labs, vm_named, fresh_name):
    # Instant clones stay on their source's host, so all of these compete for one host.
    source = vm_named(topology.running(2))
    count = topology.per_host_provisioning + 2
    tasks = [vsphere.instant_clone(si, source, n, labs.folder, labs.pool, {"labsync.vm": n})
             for n in (fresh_name(f"host{i}") for i in range(count))]

    states = [vsphere.props(si, t, ["info.state"])["info.state"] for t in tasks]
    assert states.count("running") <= topology.per_host_provisioning, states
    assert states.count("queued") >= count - topology.per_host_provisioning, states

    vsphere.run_all(si, tasks)
