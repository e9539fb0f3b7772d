"""Folders, custom fields and lookups by UUID: what labsync's lab records and locks rely on."""

import uuid

import pytest
from pyVmomi import vim

import vsphere


def test_create_folder_makes_a_child_folder(si, labs, fresh_name):
    name = fresh_name("folder")
    folder = labs.folder.CreateFolder(name)
    assert isinstance(folder, vim.Folder)
    read = vsphere.props(si, folder, ["name", "parent"])
    assert read == {"name": name, "parent": labs.folder}
    assert folder in vsphere.props(si, labs.folder, ["childEntity"])["childEntity"]


@pytest.mark.vcsim_gap
def test_a_second_folder_with_the_same_name_is_duplicate_name(si, labs, fresh_name):
    # labsync's apply lock is a folder: the second creator must get DuplicateName, whose
    # `object` is the "managed object that already holds the name" (vcsim names the parent).
    name = fresh_name("lock")
    first = labs.folder.CreateFolder(name)
    with pytest.raises(vim.fault.DuplicateName) as raised:
        labs.folder.CreateFolder(name)
    assert raised.value.name == name
    assert raised.value.object == first
    children = vsphere.props(si, labs.folder, ["childEntity"])["childEntity"]
    assert [c for c in children if vsphere.props(si, c, ["name"])["name"] == name] == [first]


def test_an_empty_folder_can_be_destroyed(si, labs, fresh_name):
    folder = labs.folder.CreateFolder(fresh_name("gone"))
    vsphere.run(folder.Destroy_Task())
    assert folder not in vsphere.props(si, labs.folder, ["childEntity"])["childEntity"]


def test_custom_field_values_set_on_a_folder_are_read_back(si, labs, fresh_name):
    fields = si.RetrieveContent().customFieldsManager
    field_name = fresh_name("field")
    definition = fields.AddCustomFieldDef(name=field_name, moType=vim.Folder)
    assert definition.name == field_name
    assert isinstance(definition.key, int)
    folder = labs.folder.CreateFolder(fresh_name("record"))

    fields.SetField(entity=folder, key=definition.key, value="expired:2026-11-26T12:00:00Z")

    values = vsphere.props(si, folder, ["customValue"])["customValue"]
    assert [(v.key, v.value) for v in values] == [(definition.key,
                                                   "expired:2026-11-26T12:00:00Z")]
    listed = vsphere.props(si, fields, ["field"])["field"]
    assert any(f.key == definition.key and f.name == field_name for f in listed)


def test_a_second_custom_field_with_the_same_name_is_duplicate_name(si, fresh_name):
    fields = si.RetrieveContent().customFieldsManager
    name = fresh_name("twice")
    fields.AddCustomFieldDef(name=name, moType=vim.Folder)
    with pytest.raises(vim.fault.DuplicateName) as raised:
        fields.AddCustomFieldDef(name=name, moType=vim.Folder)
    assert raised.value.name == name


def test_find_by_uuid_finds_a_vm_by_its_bios_uuid(si, topology, vm_named):
    source = vm_named(topology.powered_off_source)
    bios_uuid = vsphere.props(si, source, ["config.uuid"])["config.uuid"]
    index = si.RetrieveContent().searchIndex
    assert index.FindByUuid(uuid=bios_uuid, vmSearch=True) == source
    assert index.FindByUuid(uuid=str(uuid.uuid4()), vmSearch=True) is None
