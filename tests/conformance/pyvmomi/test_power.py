"""Power operations and destroy, including the power-state faults vCenter raises."""

import pytest
from pyVmomi import vim, vmodl

import vsphere


@pytest.fixture
def victim(si, topology, labs, vm_named, fresh_name):
    """A powered-off full clone of the powered-off source, so sources stay untouched."""
    source = vm_named(topology.powered_off_source)
    name = fresh_name("victim")
    return vsphere.run(vsphere.clone(source, name, labs.folder, labs.pool, {}, power_on=False))


def _assert_invalid_power_state(fault, requested, existing):
    assert isinstance(fault, vim.fault.InvalidPowerState), repr(fault)
    assert fault.requestedState == requested
    assert fault.existingState == existing


def test_power_on_and_off_change_the_power_state(si, victim):
    assert vsphere.power_state(si, victim) == "poweredOff"
    vsphere.run(victim.PowerOnVM_Task())
    assert vsphere.power_state(si, victim) == "poweredOn"
    vsphere.run(victim.PowerOffVM_Task())
    assert vsphere.power_state(si, victim) == "poweredOff"


def test_powering_off_a_powered_off_vm_is_invalid_power_state(si, victim):
    fault = vsphere.task_fault(victim.PowerOffVM_Task())
    _assert_invalid_power_state(fault, "poweredOff", "poweredOff")
    assert vsphere.power_state(si, victim) == "poweredOff"


def test_powering_on_a_powered_on_vm_is_invalid_power_state(si, victim):
    vsphere.run(victim.PowerOnVM_Task())
    fault = vsphere.task_fault(victim.PowerOnVM_Task())
    _assert_invalid_power_state(fault, "poweredOn", "poweredOn")
    assert vsphere.power_state(si, victim) == "poweredOn"


def test_destroying_a_powered_on_vm_is_invalid_power_state_and_keeps_it(si, victim):
    vsphere.run(victim.PowerOnVM_Task())
    fault = vsphere.task_fault(victim.Destroy_Task())
    _assert_invalid_power_state(fault, "poweredOff", "poweredOn")
    assert vsphere.power_state(si, victim) == "poweredOn"
    name = vsphere.props(si, victim, ["name"])["name"]
    assert vsphere.vms_named(si, name) == [victim]


def test_destroying_a_powered_off_vm_removes_it(si, victim):
    name = vsphere.props(si, victim, ["name"])["name"]
    assert vsphere.run(victim.Destroy_Task()) is None
    assert vsphere.vms_named(si, name) == []
    with pytest.raises(vmodl.fault.ManagedObjectNotFound) as raised:
        vsphere.props(si, victim, ["name"])
    assert raised.value.obj == victim


def test_a_task_reports_its_entity_and_times(si, victim):
    task = victim.PowerOnVM_Task()
    vsphere.run(task)
    info = task.info
    assert info.state == "success"
    assert info.entity == victim
    assert info.key and info.task == task
    assert info.descriptionId, "descriptionId is empty"
    assert info.queueTime <= info.startTime <= info.completeTime
