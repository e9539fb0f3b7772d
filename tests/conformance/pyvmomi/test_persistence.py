"""`--state FILE`: the simulator's world survives a restart, and a crash (SIGKILL) loses at most
the operation in flight, never the file."""

import uuid

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim

import simserver
import vsphere
from conftest import connect

pytestmark = pytest.mark.vcsim_gap


@pytest.fixture
def state_dir(tmp_path):
    """A folder for the state file and the server logs of one test."""
    return tmp_path


def _serve(state_dir):
    return simserver.start(state_dir, extra_args=("--state", str(state_dir / "sim-state")))


def _clone_one(si, topology, name):
    """Instant-clones the first running source; returns the source's depth after it."""
    source = vsphere.by_name(si, vim.VirtualMachine, topology.running(0))
    folder = vsphere.by_name(si, vim.Folder, topology.labs_folder)
    pool = vsphere.by_name(si, vim.ResourcePool, topology.labs_pool)
    vsphere.run(vsphere.instant_clone(si, source, name, folder, pool, {"labsync.vm": name},
                                      str(uuid.uuid4())))
    return vsphere.chain_depth(si, source)


def _assert_world(si, topology, name, depth):
    clones = vsphere.vms_named(si, name)
    assert len(clones) == 1, f"clone {name!r} after restart: {clones}"
    assert vsphere.extra_config(si, clones[0]).get("labsync.vm") == name
    assert vsphere.power_state(si, clones[0]) == "poweredOn"
    source = vsphere.by_name(si, vim.VirtualMachine, topology.running(0))
    assert vsphere.chain_depth(si, source) == depth


def test_state_survives_a_clean_restart(state_dir, topology, fresh_name):
    server = _serve(state_dir)
    try:
        si = connect(server)
        name = fresh_name("kept")
        depth = _clone_one(si, topology, name)
        Disconnect(si)
    finally:
        assert server.stop() == 0

    again = _serve(state_dir)
    try:
        si = connect(again)
        _assert_world(si, topology, name, depth)
        Disconnect(si)
    finally:
        assert again.stop() == 0


def test_a_completed_clone_survives_a_crash(state_dir, topology, fresh_name):
    server = _serve(state_dir)
    try:
        si = connect(server)
        name = fresh_name("crash")
        depth = _clone_one(si, topology, name)
    finally:
        server.kill_hard()

    again = _serve(state_dir)
    try:
        si = connect(again)
        _assert_world(si, topology, name, depth)
        Disconnect(si)
    finally:
        assert again.stop() == 0
