"""Sessions, service content and faults of the session layer, as pyvmomi sees them."""

import datetime
import hashlib
import re
import ssl
import time
import uuid

import pytest
from pyVim.connect import Disconnect
from pyVmomi import SoapStubAdapter, vim, vmodl

import simserver
import vsphere
from conftest import connect


def test_smartconnect_finds_a_vcenter_with_a_plausible_about(si):
    about = si.content.about
    assert about.apiType == "VirtualCenter"
    assert "vcenter" in about.name.lower(), about.name
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.\d+)?", about.version), about.version
    assert re.fullmatch(r"\d+\.\d+(\.\d+)*", about.apiVersion), about.apiVersion
    assert about.version in about.fullName, (about.version, about.fullName)
    assert about.build, "about.build is empty"
    uuid.UUID(about.instanceUuid)


def test_service_content_names_the_managers_a_client_needs(si):
    content = si.RetrieveContent()
    assert isinstance(content.rootFolder, vim.Folder)
    assert isinstance(content.propertyCollector, vmodl.query.PropertyCollector)
    assert isinstance(content.viewManager, vim.view.ViewManager)
    assert isinstance(content.sessionManager, vim.SessionManager)
    assert isinstance(content.taskManager, vim.TaskManager)
    assert isinstance(content.customFieldsManager, vim.CustomFieldsManager)
    assert isinstance(content.searchIndex, vim.SearchIndex)


def test_the_session_belongs_to_the_user_who_logged_in(si):
    manager = si.RetrieveContent().sessionManager
    session = vsphere.props(si, manager, ["currentSession"])["currentSession"]
    assert session is not None
    assert session.userName.split("\\")[-1].split("@")[0] == simserver.USERNAME
    assert session.key
    assert manager.SessionIsActive(sessionID=session.key, userName=session.userName) is True


def test_server_time_is_a_timestamp(si):
    now = si.CurrentTime()
    assert isinstance(now, datetime.datetime)
    assert now.tzinfo is not None


def test_lazy_attribute_access_agrees_with_the_property_collector(si, topology):
    # pyvmomi users write vm.runtime.powerState; pyvmomi turns that into the Fetch method.
    vm = vsphere.by_name(si, vim.VirtualMachine, topology.powered_off_source)
    assert vm.name == topology.powered_off_source
    assert vm.runtime.powerState == "poweredOff"
    read = vsphere.props(si, vm, ["runtime.powerState", "runtime.host"])
    assert vm.runtime.host == read["runtime.host"]


def test_a_call_without_a_session_cookie_is_not_authenticated(sim, si):
    stub = SoapStubAdapter(url=sim.url, version=si._stub.version)
    anonymous = vim.ServiceInstance("ServiceInstance", stub)
    # Service content is readable without a session: that is how a client finds SessionManager.
    content = anonymous.RetrieveContent()
    assert content.about.apiType == "VirtualCenter"
    with pytest.raises(vim.fault.NotAuthenticated):
        content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)


def test_a_property_read_without_a_session_is_not_authenticated(sim, si):
    stub = SoapStubAdapter(url=sim.url, version=si._stub.version)
    content = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
    spec = vsphere.PC.FilterSpec(
        objectSet=[vsphere.PC.ObjectSpec(obj=content.rootFolder, skip=False)],
        propSet=[vsphere.PC.PropertySpec(type=vim.Folder, pathSet=["name"])],
    )
    try:
        result = content.propertyCollector.RetrievePropertiesEx(
            specSet=[spec], options=vsphere.PC.RetrieveOptions())
    except vim.fault.NotAuthenticated:
        return
    # vCenter may also answer with the fault inside missingSet instead of a SOAP fault.
    rows = vsphere._rows(result) if result is not None else []
    faults = [f for row in rows for f in row.missing.values()]
    values = [v for row in rows for v in row.props.values()]
    assert not values, f"an anonymous read returned data: {values}"
    assert faults and all(isinstance(f, vim.fault.NotAuthenticated) for f in faults), faults


def test_logout_ends_the_session(sim):
    instance = connect(sim)
    content = instance.RetrieveContent()
    content.sessionManager.Logout()
    with pytest.raises(vim.fault.NotAuthenticated):
        content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)


def test_a_wrong_password_is_an_invalid_login(sim):
    with pytest.raises(vim.fault.InvalidLogin):
        connect(sim, pwd=simserver.PASSWORD + "-wrong")


def test_an_unknown_user_is_an_invalid_login(sim):
    with pytest.raises(vim.fault.InvalidLogin):
        connect(sim, user="nobody-" + simserver.USERNAME)


def test_two_sessions_can_be_open_at_once(sim, si):
    other = connect(sim)
    try:
        assert vsphere.names(other, vim.Datacenter) == vsphere.names(si, vim.Datacenter)
    finally:
        Disconnect(other)
    # Logging the second session out leaves the first one working.
    assert vsphere.names(si, vim.Datacenter)


def test_a_method_the_server_does_not_serve_is_method_not_found(si, topology):
    vm = vsphere.by_name(si, vim.VirtualMachine, next(iter(topology.running_sources)))
    with pytest.raises(vmodl.fault.MethodNotFound) as raised:
        vm.RebootGuest()
    assert raised.value.method == "RebootGuest"
    assert raised.value.receiver == vm


@pytest.mark.vcsim_gap
def test_mark_as_template_is_method_not_found(si, topology):
    vm = vsphere.by_name(si, vim.VirtualMachine, topology.powered_off_source)
    with pytest.raises(vmodl.fault.MethodNotFound) as raised:
        vm.MarkAsTemplate()
    assert raised.value.method == "MarkAsTemplate"


def test_tls_serves_the_certificate_whose_thumbprint_it_printed(tls_sim):
    pem = ssl.get_server_certificate((tls_sim.host, tls_sim.port))
    der = ssl.PEM_cert_to_DER_cert(pem)
    digest = hashlib.sha256(der).hexdigest().upper()
    expected = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    assert tls_sim.thumbprint == expected


def test_smartconnect_works_over_tls(tls_sim):
    instance = connect(tls_sim)
    try:
        assert instance.content.about.apiType == "VirtualCenter"
        assert vsphere.names(instance, vim.Datacenter)
    finally:
        Disconnect(instance)


def test_sigterm_stops_the_server_with_exit_code_zero(fresh_sim):
    instance = connect(fresh_sim)
    assert vsphere.names(instance, vim.Datacenter)
    assert fresh_sim.stop() == 0


def test_username_flag_sets_the_only_accepted_user(tmp_path):
    server = simserver.start(tmp_path, extra_args=("--username", "trainer"))
    try:
        instance = connect(server, user="trainer")
        session = vsphere.props(instance, instance.RetrieveContent().sessionManager,
                                ["currentSession"])["currentSession"]
        assert session.userName.split("\\")[-1].split("@")[0] == "trainer"
        Disconnect(instance)
        with pytest.raises(vim.fault.InvalidLogin):
            connect(server, user=simserver.USERNAME)
    finally:
        assert server.stop() == 0


@pytest.mark.vcsim_gap
def test_an_expired_session_is_not_authenticated_and_a_new_login_works(tmp_path):
    # `--session-expiry` is documented in docs/simulator.md; real time, to be independent of
    # whether the simulator scales it.
    server = simserver.start(tmp_path, time_scale="1", extra_args=("--session-expiry", "1"))
    try:
        instance = connect(server)
        content = instance.RetrieveContent()
        time.sleep(2.5)
        with pytest.raises(vim.fault.NotAuthenticated):
            content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine],
                                                    True)
        again = connect(server)
        assert vsphere.names(again, vim.Datacenter)
    finally:
        assert server.stop() == 0
