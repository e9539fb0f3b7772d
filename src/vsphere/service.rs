//! `ServiceContent` and `AboutInfo`: the entry points read from `RetrieveServiceContent`, so no
//! MoRef is ever hard-coded, and the API version from `/sdk/vimServiceVersions.xml`.

use super::wire::Element;
use super::wire::xml::{self, XmlError};
use crate::model::MoRef;

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct About {
    pub name: String,
    pub full_name: String,
    pub version: String,
    pub build: String,
    /// `VirtualCenter` or `HostAgent`.
    pub api_type: String,
    pub api_version: String,
    pub instance_uuid: String,
}

/// The managed objects labsync uses, as the server names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContent {
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    pub search_index: Option<MoRef>,
    pub custom_fields_manager: Option<MoRef>,
    pub task_manager: Option<MoRef>,
    pub vm_provisioning_checker: Option<MoRef>,
    pub about: About,
}

impl ServiceContent {
    /// Reads a `RetrieveServiceContentResponse`; `None` names the missing required field.
    pub fn from_response(resp: &Element) -> Result<Self, String> {
        let rv = resp.child("returnval").ok_or("no returnval")?;
        let req = |name: &str| rv.child_moref(name).ok_or(format!("no {name}"));
        let about = rv.child("about").map(|a| {
            let t = |n: &str| a.child_text(n).unwrap_or_default().to_string();
            About {
                name: t("name"),
                full_name: t("fullName"),
                version: t("version"),
                build: t("build"),
                api_type: t("apiType"),
                api_version: t("apiVersion"),
                instance_uuid: t("instanceUuid"),
            }
        });
        Ok(Self {
            root_folder: req("rootFolder")?,
            property_collector: req("propertyCollector")?,
            view_manager: req("viewManager")?,
            session_manager: req("sessionManager")?,
            search_index: rv.child_moref("searchIndex"),
            custom_fields_manager: rv.child_moref("customFieldsManager"),
            task_manager: rv.child_moref("taskManager"),
            vm_provisioning_checker: rv.child_moref("vmProvisioningChecker"),
            about: about.unwrap_or_default(),
        })
    }
}

/// The newest `urn:vim25` version listed in `vimServiceVersions.xml`.
pub fn api_version_from_versions_xml(doc: &str) -> Result<Option<String>, XmlError> {
    let root = xml::parse(doc)?;
    Ok(root
        .children_named("namespace")
        .find(|ns| ns.child_text("name") == Some("urn:vim25"))
        .and_then(|ns| ns.child_text("version"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::wire::envelope::{Response, unwrap};

    #[test]
    fn vcsim_service_content_yields_its_morefs_and_about() {
        let doc = include_str!("../../tests/fixtures/vcsim/retrieve_service_content.xml");
        let Response::Ok(resp) = unwrap(doc).unwrap() else {
            panic!("fault")
        };
        let sc = ServiceContent::from_response(&resp).unwrap();
        assert_eq!(sc.root_folder, MoRef::new("Folder", "group-d1"));
        assert_eq!(
            sc.property_collector,
            MoRef::new("PropertyCollector", "propertyCollector")
        );
        assert_eq!(
            sc.vm_provisioning_checker,
            Some(MoRef::new(
                "VirtualMachineProvisioningChecker",
                "ProvChecker"
            ))
        );
        assert_eq!(sc.about.api_type, "VirtualCenter");
        assert_eq!(sc.about.api_version, "6.5");
    }

    #[test]
    fn vcsim_versions_document_names_the_vim25_version() {
        let doc = include_str!("../../tests/fixtures/vcsim/vim_service_versions.xml");
        assert_eq!(
            api_version_from_versions_xml(doc).unwrap(),
            Some("6.5".to_string())
        );
    }
}
