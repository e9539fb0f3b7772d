//! `SearchIndex` lookups by inventory place: `FindChild` (one level) and `FindByInventoryPath`
//! (a path walked one `FindChild` at a time), as vCenter and vcsim define them.

use super::fault::Fault;
use super::ops::not_found;
use super::world::{Entity, Kind, World};
use crate::model::MoRef;

impl World {
    /// `FindChild`: the immediate child of `parent` named `name`, or `None`.
    ///
    /// Children are a folder's `childEntity`, a datacenter's four folders, a cluster's hosts and
    /// root pool (`Resources`), and a resource pool's pools and VMs; other entities have none.
    /// A `parent` that does not exist is `ManagedObjectNotFound`.
    pub fn find_child(&self, parent: &MoRef, name: &str) -> Result<Option<MoRef>, Fault> {
        let e = self
            .resolve(parent)
            .ok_or_else(|| not_found(&parent.kind, &parent.value))?;
        Ok(self.child_by_name(e, name).map(Entity::moref))
    }

    fn child_by_name(&self, e: &Entity, name: &str) -> Option<&Entity> {
        match &e.kind {
            Kind::Folder(_) | Kind::Datacenter(_) | Kind::Cluster { .. } => {
                self.child_named(&e.id, name)
            }
            Kind::Pool { .. } => self.child_named(&e.id, name).or_else(|| {
                self.vms_in_pool(&e.id)
                    .iter()
                    .filter_map(|r| self.get(&r.value))
                    .find(|vm| vm.name == name)
            }),
            Kind::Host | Kind::Datastore(_) | Kind::Network | Kind::Vm(_) => None,
        }
    }

    /// Finds an entity by inventory path (`/DC1/vm/templates/k8s-db`, `DC1/host/Cluster1/
    /// Resources/labs`): empty segments (leading, trailing or doubled slashes) are ignored, as in
    /// `FindByInventoryPath`; an empty path finds nothing.
    pub fn find_path(&self, path: &str) -> Option<&Entity> {
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        parts.peek()?;
        let mut cur = self.objects.get(&self.root)?;
        for part in parts {
            cur = self.child_by_name(cur, part)?;
        }
        Some(cur)
    }
}
