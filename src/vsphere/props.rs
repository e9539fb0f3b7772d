//! Batched property reads: a container view (cached per session, recreated after a re-login)
//! and `RetrievePropertiesEx` + `ContinueRetrievePropertiesEx` paging, asking only for the
//! properties the caller names. `NotAuthenticated` inside `missingSet` counts as a lost session.

use super::error::{Error, Result};
use super::session::{Call, Client};
use super::wire::envelope::{self, EnvelopeError, Response};
use super::wire::{Body, Element, Fault};
use crate::model::MoRef;

/// The properties to read from objects of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropSpec {
    /// Managed object type, e.g. `VirtualMachine`.
    pub kind: String,
    pub paths: Vec<String>,
}

impl PropSpec {
    /// A spec for `kind` with these property paths.
    pub fn new(kind: &str, paths: &[&str]) -> Self {
        Self {
            kind: kind.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// One object's properties as returned (`ObjectContent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectContent {
    pub obj: MoRef,
    /// `(name, val)` pairs in the server's order.
    pub props: Vec<(String, Element)>,
    /// Properties the server could not read, with why.
    pub missing: Vec<(String, Fault)>,
}

impl ObjectContent {
    /// The value element of a property.
    pub fn get(&self, name: &str) -> Option<&Element> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// A property's text (strings, enums, numbers, booleans).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(|v| v.text.as_str())
    }
    /// A MoRef property.
    pub fn moref(&self, name: &str) -> Option<MoRef> {
        self.get(name).and_then(Element::as_moref)
    }
}

/// A container view remembered for reuse within one login generation.
#[derive(Debug, Clone)]
pub(crate) struct CachedView {
    container: MoRef,
    types: Vec<String>,
    generation: u64,
    view: MoRef,
}

impl CachedView {
    /// A view kept in the session file, for the session restored as `generation`.
    pub(crate) fn restored(saved: super::session_cache::SavedView, generation: u64) -> Self {
        Self {
            container: saved.container,
            types: saved.types,
            generation,
            view: saved.view,
        }
    }

    /// The view as the session file keeps it.
    pub(crate) fn saved(&self) -> super::session_cache::SavedView {
        super::session_cache::SavedView {
            container: self.container.clone(),
            types: self.types.clone(),
            view: self.view.clone(),
        }
    }
}

/// Reads the `returnval` of a `RetrievePropertiesEx`/`Continue…` response: objects and token.
pub fn parse_retrieve_result(resp: &Element) -> (Vec<ObjectContent>, Option<String>) {
    let Some(rv) = resp.child("returnval") else {
        return (Vec::new(), None);
    };
    let token = rv
        .child_text("token")
        .map(str::to_string)
        .filter(|t| !t.is_empty());
    let objects = rv
        .children_named("objects")
        .filter_map(|o| object_content(o.clone()))
        .collect();
    (objects, token)
}

/// One page of a property read: what the caller made of each object, and the token of the next
/// page.
#[derive(Debug)]
pub struct Page<T> {
    pub objects: Vec<T>,
    pub token: Option<String>,
}

/// Decodes a `RetrievePropertiesEx`/`Continue…` response as it is read: each `objects` element
/// becomes an [`ObjectContent`] as soon as it ends and goes to `map` at once, so no tree of the
/// whole response is ever built; only what `map` keeps stays in memory.
pub fn stream_retrieve_result<T>(
    doc: &str,
    map: &mut dyn FnMut(ObjectContent) -> Option<T>,
) -> Result<Response<Page<T>>, EnvelopeError> {
    envelope::unwrap_streamed(doc, |r, method| {
        let mut page = Page {
            objects: Vec::new(),
            token: None,
        };
        if method.element.name != "RetrievePropertiesExResponse"
            && method.element.name != "ContinueRetrievePropertiesExResponse"
        {
            r.skip(method)?;
            return Ok(page);
        }
        while let Some(rv) = r.next_child()? {
            if rv.element.name != "returnval" {
                r.skip(rv)?;
                continue;
            }
            while let Some(part) = r.next_child()? {
                match part.element.name.as_ref() {
                    "token" => {
                        page.token = Some(r.finish(part)?.text).filter(|t| !t.is_empty());
                    }
                    "objects" => {
                        if let Some(oc) = object_content(r.finish(part)?) {
                            page.objects.extend(map(oc));
                        }
                    }
                    _ => r.skip(part)?,
                }
            }
        }
        Ok(page)
    })
}

/// An `ObjectContent` element, its property values moved out (no copies).
fn object_content(o: Element) -> Option<ObjectContent> {
    let obj = o.child_moref("obj")?;
    let mut props = Vec::new();
    let mut missing = Vec::new();
    for part in o.children {
        match part.name.as_ref() {
            "propSet" => {
                let mut name = None;
                let mut val = None;
                for c in part.children {
                    match c.name.as_ref() {
                        "name" if name.is_none() => name = Some(c.text),
                        "val" if val.is_none() => val = Some(c),
                        _ => {}
                    }
                }
                let Some(name) = name else { continue };
                let val = val.unwrap_or_else(|| Element {
                    ns: super::wire::xml::Ns::None,
                    name: "val".into(),
                    xsi_type: None,
                    mo_type: None,
                    text: String::new(),
                    children: Vec::new(),
                });
                props.push((name, val));
            }
            "missingSet" => {
                let path = part.child_text("path").map(str::to_string);
                let fault = part.child("fault").map(Fault::from_localized);
                if let (Some(path), Some(fault)) = (path, fault) {
                    missing.push((path, fault));
                }
            }
            _ => {}
        }
    }
    Some(ObjectContent {
        obj,
        props,
        missing,
    })
}

fn write_prop_specs(b: &mut Body, specs: &[PropSpec]) {
    for s in specs {
        b.open("propSet").leaf("type", &s.kind);
        for p in &s.paths {
            b.leaf("pathSet", p);
        }
        b.close("propSet");
    }
}

impl Client {
    /// A container view of `types` under `container`, reused while the session lasts.
    pub async fn container_view(&self, container: &MoRef, types: &[&str]) -> Result<MoRef> {
        let generation = self.generation();
        let mut views = self.inner.views.lock().await;
        views.retain(|v| v.generation == generation);
        if let Some(v) = views
            .iter()
            .find(|v| &v.container == container && v.types.iter().eq(types.iter()))
        {
            return Ok(v.view.clone());
        }
        let vm = self.content().view_manager.clone();
        let mut b = Body::method("CreateContainerView", &vm);
        b.moref("container", container);
        for t in types {
            b.leaf("type", t);
        }
        b.bool("recursive", true);
        let resp = self
            .call(
                Call::Read,
                "CreateContainerView",
                &vm,
                b.finish("CreateContainerView"),
            )
            .await?;
        let view = resp
            .child("returnval")
            .and_then(Element::as_moref)
            .ok_or_else(|| Error::Decode {
                method: "CreateContainerView".into(),
                reason: "no view in the response".into(),
            })?;
        views.push(CachedView {
            container: container.clone(),
            types: types.iter().map(|t| t.to_string()).collect(),
            // A re-login inside the call bumped the generation: the view belongs to the new one.
            generation: self.generation(),
            view: view.clone(),
        });
        let generation = self.generation();
        let kept: Vec<_> = views
            .iter()
            .filter(|v| v.generation == generation)
            .map(CachedView::saved)
            .collect();
        self.save_session(kept);
        Ok(view)
    }

    /// Reads `specs` from every object of `types` under `container`, with paging. Survives one
    /// lost session by re-logging in and recreating the view.
    pub async fn retrieve_under(
        &self,
        container: &MoRef,
        types: &[&str],
        specs: &[PropSpec],
    ) -> Result<Vec<ObjectContent>> {
        self.retrieve_under_with(container, types, specs, &[]).await
    }

    /// Like [`Client::retrieve_under`], plus `extra` objects read directly in the same call
    /// (e.g. the CustomFieldsManager's field names next to the inventory).
    pub async fn retrieve_under_with(
        &self,
        container: &MoRef,
        types: &[&str],
        specs: &[PropSpec],
        extra: &[MoRef],
    ) -> Result<Vec<ObjectContent>> {
        self.retrieve_under_map(container, types, specs, extra, &mut Some)
            .await
    }

    /// Like [`Client::retrieve_under_with`], handing each object to `map` as soon as it is read
    /// and keeping only what `map` returns: the way to read a large inventory in little memory.
    /// `map` may see an object twice when a lost session makes the read start over; only the
    /// results of the read that completes are returned.
    pub async fn retrieve_under_map<T: Send>(
        &self,
        container: &MoRef,
        types: &[&str],
        specs: &[PropSpec],
        extra: &[MoRef],
        map: &mut (dyn FnMut(ObjectContent) -> Option<T> + Send),
    ) -> Result<Vec<T>> {
        match self
            .retrieve_under_once(container, types, specs, extra, map)
            .await
        {
            Err(Error::SessionRenewed) => {
                self.retrieve_under_once(container, types, specs, extra, map)
                    .await
            }
            r => r,
        }
    }

    async fn retrieve_under_once<T: Send>(
        &self,
        container: &MoRef,
        types: &[&str],
        specs: &[PropSpec],
        extra: &[MoRef],
        map: &mut (dyn FnMut(ObjectContent) -> Option<T> + Send),
    ) -> Result<Vec<T>> {
        let view = self.container_view(container, types).await?;
        let mut b = Body::method("RetrievePropertiesEx", &self.content().property_collector);
        b.open("specSet");
        write_prop_specs(&mut b, specs);
        b.open("objectSet")
            .moref("obj", &view)
            .bool("skip", true)
            .open_typed("selectSet", "TraversalSpec")
            .leaf("name", "traverseEntities")
            .leaf("type", "ContainerView")
            .leaf("path", "view")
            .bool("skip", false)
            .close("selectSet")
            .close("objectSet");
        for o in extra {
            b.open("objectSet").moref("obj", o).close("objectSet");
        }
        b.close("specSet");
        match self.retrieve_paged(b, map).await {
            // The view is gone (vcsim answers this way for a killed session, since it lets
            // property reads through without one): forget it so the retry recreates it.
            Err(e) if e.fault().and_then(|f| f.moref_field("obj")).as_ref() == Some(&view) => {
                self.inner.views.lock().await.clear();
                Err(Error::SessionRenewed)
            }
            r => r,
        }
    }

    /// Reads `paths` of the given objects directly (no view), with paging.
    pub async fn retrieve_objects(
        &self,
        objs: &[MoRef],
        paths: &[&str],
    ) -> Result<Vec<ObjectContent>> {
        let mut kinds: Vec<&str> = objs.iter().map(|o| o.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let specs: Vec<PropSpec> = kinds.iter().map(|k| PropSpec::new(k, paths)).collect();
        let mut b = Body::method("RetrievePropertiesEx", &self.content().property_collector);
        b.open("specSet");
        write_prop_specs(&mut b, &specs);
        for o in objs {
            b.open("objectSet").moref("obj", o).close("objectSet");
        }
        b.close("specSet");
        match self.retrieve_paged(b, &mut Some).await {
            Err(Error::SessionRenewed) => {
                // No session objects involved: just read again.
                let mut b =
                    Body::method("RetrievePropertiesEx", &self.content().property_collector);
                b.open("specSet");
                write_prop_specs(&mut b, &specs);
                for o in objs {
                    b.open("objectSet").moref("obj", o).close("objectSet");
                }
                b.close("specSet");
                self.retrieve_paged(b, &mut Some).await
            }
            r => r,
        }
    }

    /// Sends a `RetrievePropertiesEx` whose `specSet` is written, then follows the tokens; each
    /// page is decoded as it is read ([`stream_retrieve_result`]). Pipelined: as soon as a
    /// page's token is known (it comes first) the next page is asked for, so the server builds
    /// page n+1 while this side decodes page n.
    async fn retrieve_paged<T: Send>(
        &self,
        mut b: Body,
        map: &mut (dyn FnMut(ObjectContent) -> Option<T> + Send),
    ) -> Result<Vec<T>> {
        b.open("options")
            .leaf("maxObjects", &self.options().page_size.to_string())
            .close("options");
        let mut fetching =
            Some(self.fetch_page("RetrievePropertiesEx", b.finish("RetrievePropertiesEx")));
        let mut all = Vec::new();
        while let Some(page) = fetching.take() {
            let doc = page.wait().await?;
            if let Some(token) = peek_token(&doc) {
                let method = "ContinueRetrievePropertiesEx";
                let mut b = Body::method(method, &self.content().property_collector);
                b.leaf("token", &token);
                fetching = Some(self.fetch_page(method, b.finish(method)));
            }
            // `NotAuthenticated` can arrive inside a successful read; treat it like the fault.
            let mut lost = false;
            let decoded = stream_retrieve_result(&doc, &mut |oc: ObjectContent| {
                lost |= oc.missing.iter().any(|(_, f)| f.is("NotAuthenticated"));
                map(oc)
            });
            drop(doc);
            let page = match decoded {
                Ok(Response::Ok(page)) => page,
                // `fetch_page` returned only answers whose head is not a fault.
                Ok(Response::Fault(f)) => return Err(self.fault_error("RetrievePropertiesEx", f)),
                Err(e) => {
                    return Err(Error::Decode {
                        method: "RetrievePropertiesEx".into(),
                        reason: e.to_string(),
                    });
                }
            };
            if lost {
                drop(fetching.take());
                self.relogin(self.generation()).await?;
                return Err(Error::SessionRenewed);
            }
            all.extend(page.objects);
        }
        Ok(all)
    }

    /// Starts one page's call in its own task; its answer (not a fault) is the raw document.
    fn fetch_page(&self, method: &'static str, body: String) -> Fetching {
        let client = self.clone();
        Fetching(tokio::spawn(async move {
            let pc = client.content().property_collector.clone();
            let mut head = |doc: &mut String| {
                envelope::unwrap_head(doc).map(|r| match r {
                    Response::Ok(()) => Response::Ok(std::mem::take(doc)),
                    Response::Fault(f) => Response::Fault(f),
                })
            };
            client
                .call_with(Call::Session, method, &pc, body, &mut head)
                .await
        }))
    }
}

/// A page being fetched; dropping it cancels the call (an abandoned read must not run on).
struct Fetching(tokio::task::JoinHandle<Result<String>>);

impl Fetching {
    async fn wait(mut self) -> Result<String> {
        (&mut self.0).await.map_err(|_| Error::Closed)?
    }
}

impl Drop for Fetching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The token of a `RetrievePropertiesEx` page, read without decoding its objects (vim25 puts
/// `token` before `objects`; were it after, they are only skipped). `None` for the last page or
/// a document the full decode will refuse anyway.
fn peek_token(doc: &str) -> Option<String> {
    let mut r = super::wire::xml::Reader::new(doc);
    let _envelope = r.next_child().ok()??;
    loop {
        let part = r.next_child().ok()??;
        if part.element.name == "Body" {
            break;
        }
        r.skip(part).ok()?;
    }
    let _method = r.next_child().ok()??;
    let _returnval = r.next_child().ok()??;
    loop {
        let part = r.next_child().ok()??;
        if part.element.name == "token" {
            return Some(r.finish(part).ok()?.text).filter(|t| !t.is_empty());
        }
        r.skip(part).ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::wire::envelope::{Response, unwrap};

    fn body(doc: &str) -> Element {
        match unwrap(doc).unwrap() {
            Response::Ok(el) => el,
            Response::Fault(f) => panic!("{f}"),
        }
    }

    #[test]
    fn vcsim_inventory_read_yields_objects_with_typed_values() {
        let el = body(include_str!(
            "../../tests/fixtures/vcsim/retrieve_properties_inventory.xml"
        ));
        let (objects, token) = parse_retrieve_result(&el);
        // vcsim 0.24.2 ignores maxObjects: everything in one page, no token.
        assert_eq!(token, None);
        let vm = objects
            .iter()
            .find(|o| o.obj == MoRef::new("VirtualMachine", "vm-57"))
            .unwrap();
        assert_eq!(vm.text("name"), Some("DC0_H0_VM0"));
        assert_eq!(
            vm.moref("runtime.host"),
            Some(MoRef::new("HostSystem", "host-21"))
        );
        assert_eq!(vm.get("layoutEx.disk").unwrap().children.len(), 1);
    }

    #[test]
    fn not_authenticated_in_missing_set_is_seen() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>t-1</token><objects><obj type="VirtualMachine">vm-1</obj>
<missingSet><path>name</path><fault><fault xmlns:x="http://www.w3.org/2001/XMLSchema-instance" x:type="NotAuthenticated"><object type="VirtualMachine">vm-1</object><privilegeId>System.View</privilegeId></fault><localizedMessage></localizedMessage></fault></missingSet>
</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let (objects, token) = parse_retrieve_result(&body(doc));
        assert_eq!(token.as_deref(), Some("t-1"));
        assert!(objects[0].missing[0].1.is("NotAuthenticated"));
    }
}
