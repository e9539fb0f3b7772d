"""Inventory reads through container views and the PropertyCollector, with paging."""

import pytest
from pyVmomi import vim, vmodl

import vsphere

VM_PATHS = ["name", "runtime.powerState", "runtime.host", "runtime.instantCloneFrozen", "parent"]


def _source_rows(si, topology):
    rows = vsphere.read_view(si, vim.VirtualMachine, VM_PATHS)
    return {r.props["name"]: r for r in rows if r.props.get("name") in topology.all_sources()}


def test_container_view_lists_every_source_vm_with_its_power_state(si, topology):
    rows = _source_rows(si, topology)
    assert sorted(rows) == sorted(topology.all_sources())
    for name, state in topology.all_sources().items():
        assert rows[name].props["runtime.powerState"] == state, name
        assert not rows[name].missing, (name, rows[name].missing)


def test_running_sources_sit_on_their_hosts(si, topology):
    rows = _source_rows(si, topology)
    host_names = {r.obj: r.props["name"] for r in vsphere.read_view(si, vim.HostSystem, ["name"])}
    for name, host in topology.running_sources.items():
        assert host_names[rows[name].props["runtime.host"]] == host, name
    for name in topology.all_sources():
        assert rows[name].props["runtime.host"] in host_names, f"{name} has no known host"


def test_frozen_flag_tells_frozen_sources_from_running_ones(si, topology):
    rows = _source_rows(si, topology)
    for name in topology.frozen_sources:
        assert rows[name].props.get("runtime.instantCloneFrozen") is True, name
    for name in topology.running_sources:
        # Absent or false both mean "not frozen" on the wire.
        assert rows[name].props.get("runtime.instantCloneFrozen") in (None, False), name


def test_sources_live_in_the_templates_folder_of_the_datacenter(si, topology):
    rows = _source_rows(si, topology)
    templates = vsphere.by_name(si, vim.Folder, topology.templates_folder)
    for name in topology.all_sources():
        assert rows[name].props["parent"] == templates, name
    dc = vsphere.by_name(si, vim.Datacenter, topology.datacenter)
    vm_folder = vsphere.props(si, dc, ["vmFolder"])["vmFolder"]
    assert vsphere.props(si, templates, ["parent"])["parent"] == vm_folder
    labs = vsphere.by_name(si, vim.Folder, topology.labs_folder)
    assert vsphere.props(si, labs, ["parent"])["parent"] == vm_folder


def test_cluster_holds_the_three_hosts_and_the_labs_pool(si, topology):
    assert vsphere.names(si, vim.Datacenter) == [topology.datacenter]
    cluster = vsphere.by_name(si, vim.ClusterComputeResource, topology.cluster)
    read = vsphere.props(si, cluster, ["host", "resourcePool"])
    hosts = sorted(vsphere.props(si, h, ["name"])["name"] for h in read["host"])
    assert hosts == sorted(topology.hosts)
    pool = vsphere.by_name(si, vim.ResourcePool, topology.labs_pool)
    assert vsphere.props(si, pool, ["parent"])["parent"] == read["resourcePool"]


@pytest.mark.vcsim_gap
def test_datastores_and_networks_of_the_example_exist(si, topology):
    assert set(topology.datastores) <= set(vsphere.names(si, vim.Datastore))
    assert set(topology.networks) <= set(vsphere.names(si, vim.Network))


@pytest.mark.vcsim_gap
def test_paging_with_max_objects_one_returns_every_vm_exactly_once(si):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = vsphere.view_spec(view, vim.VirtualMachine, ["name", "runtime.powerState"])
        pc = content.propertyCollector
        everything = vsphere.retrieve_all(pc, spec)
        assert len(everything) >= 2, "paging needs at least two VMs to mean anything"

        page = pc.RetrievePropertiesEx(specSet=[spec],
                                       options=vsphere.PC.RetrieveOptions(maxObjects=1))
        assert page is not None
        assert len(page.objects) == 1
        assert page.token, "a partial result must carry a token"
        seen = [page.objects[0].obj]
        pages = 1
        while page.token:
            page = pc.ContinueRetrievePropertiesEx(token=page.token)
            assert page is not None and page.objects, "a token led to an empty page"
            assert len(page.objects) <= 1, "a continued page ignored maxObjects=1"
            seen.extend(o.obj for o in page.objects)
            pages += 1
            assert pages <= len(everything), "paging does not end"
            for content_obj in page.objects:
                assert {p.name for p in content_obj.propSet} == {"name", "runtime.powerState"}
        assert len(seen) == len(set(seen)), "a VM came twice"
        assert set(seen) == {r.obj for r in everything}
    finally:
        view.DestroyView()


def test_destroyed_view_cannot_be_read(si):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    listed = vsphere.props(si, view, ["view"])["view"]
    assert listed, "a recursive VirtualMachine view of the root folder is empty"
    assert all(isinstance(v, vim.VirtualMachine) for v in listed)
    view.DestroyView()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vsphere.props(si, view, ["view"])
