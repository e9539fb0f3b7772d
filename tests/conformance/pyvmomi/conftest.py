"""Fixtures of the pyvmomi conformance suite: a fresh `labsync sim serve` per test module, a
pyvmomi ServiceInstance connected to it, and the example topology's names.

Everything inventory-specific lives in the `topology` fixture, so the checks read as vSphere
facts and the names can follow the example inventory.
"""

import itertools
from dataclasses import dataclass, field
from typing import Dict, Tuple

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

import simserver
import vsphere


@dataclass(frozen=True)
class Topology:
    """Names from examples/sim-inventory.yaml (the topology shared with labs.yaml.example)."""

    datacenter: str = "DC1"
    cluster: str = "Cluster1"
    hosts: Tuple[str, ...] = ("esx-01.lab.local", "esx-02.lab.local", "esx-03.lab.local")
    datastores: Tuple[str, ...] = ("ds-ssd-01", "ds-nfs-01")
    networks: Tuple[str, ...] = ("VM Network", "lab-net")
    templates_folder: str = "templates"
    labs_folder: str = "labs"
    labs_pool: str = "labs"
    # Running, not frozen: each instant clone adds a delta level; name -> host.
    running_sources: Dict[str, str] = field(default_factory=lambda: {
        "k8s-db": "esx-01.lab.local",
        "k8s-cp": "esx-02.lab.local",
        "k8s-worker": "esx-03.lab.local",
    })
    frozen_sources: Tuple[str, ...] = ("web-frontend", "web-api")
    snapshot_source: str = "win-client"
    snapshot_name: str = "base"
    powered_off_source: str = "perf-node"
    # Clones provisioning at once per host; the example inventory keeps the format's default.
    per_host_provisioning: int = 8

    def running(self, index: int) -> str:
        """The index-th running source, so checks on different sources do not interfere."""
        return list(self.running_sources)[index]

    def all_sources(self) -> Dict[str, str]:
        """Every source VM and the power state the example gives it."""
        states = {name: "poweredOn" for name in self.running_sources}
        states.update({name: "poweredOn" for name in self.frozen_sources})
        states[self.snapshot_source] = "poweredOn"
        states[self.powered_off_source] = "poweredOff"
        return states


@pytest.fixture(scope="session")
def topology() -> Topology:
    """The example topology's names."""
    return Topology()


_names = itertools.count(1)


@pytest.fixture
def fresh_name(request):
    """Returns a function making VM names unique within the run and readable in logs."""
    stem = request.node.name.split("[")[0].replace("_", "-")[:40]

    def make(tag: str = "vm") -> str:
        return f"cf-{next(_names):03d}-{tag}-{stem}"[:80]

    return make


def connect(server: simserver.SimServer, user: str = simserver.USERNAME,
            pwd: str = simserver.PASSWORD):
    """SmartConnect exactly as a pyvmomi user would, over http or https."""
    if server.scheme == "https":
        return SmartConnect(host=server.host, port=server.port, user=user, pwd=pwd,
                            disableSslCertValidation=True)
    return SmartConnect(protocol="http", host=server.host, port=server.port, user=user, pwd=pwd)


def _start(tmp_path_factory, request, tls=False):
    log_dir = tmp_path_factory.mktemp(request.node.name.replace("/", "_")[:60])
    return simserver.start(log_dir, tls=tls)


def stop_checked(server):
    """Stops a server and fails the test if it did not exit 0 on SIGTERM."""
    code = server.stop()
    if code != 0:
        # The contract says SIGTERM ends the server with exit code 0.
        pytest.fail(f"labsync sim serve exited {code} after SIGTERM; stderr:\n"
                    f"{server.stderr_tail()}", pytrace=False)


@pytest.fixture(scope="module")
def sim(tmp_path_factory, request):
    """A fresh simulator (plain http) for one test module; stopped at module teardown."""
    server = _start(tmp_path_factory, request)
    yield server
    stop_checked(server)


@pytest.fixture(scope="module")
def si(sim):
    """A pyvmomi ServiceInstance logged in to the module's simulator."""
    instance = connect(sim)
    yield instance
    try:
        Disconnect(instance)
    except Exception:  # noqa: BLE001 - logout of a server that a test broke is not the point
        pass


@pytest.fixture
def fresh_sim(tmp_path_factory, request):
    """A simulator of its own for one test that needs a pristine inventory."""
    server = _start(tmp_path_factory, request)
    yield server
    stop_checked(server)


@pytest.fixture
def tls_sim(tmp_path_factory, request):
    """A simulator served over https with its generated certificate."""
    server = _start(tmp_path_factory, request, tls=True)
    yield server
    stop_checked(server)


@dataclass(frozen=True)
class Placement:
    """Where clones go: the labs folder and the labs resource pool."""

    folder: object
    pool: object


@pytest.fixture(scope="module")
def labs(si, topology) -> Placement:
    """The labs folder and pool of the module's simulator."""
    return Placement(folder=vsphere.by_name(si, vim.Folder, topology.labs_folder),
                     pool=vsphere.by_name(si, vim.ResourcePool, topology.labs_pool))


@pytest.fixture(scope="module")
def vm_named(si):
    """Returns a function looking a VM up by name in the module's simulator."""
    return lambda name: vsphere.by_name(si, vim.VirtualMachine, name)
