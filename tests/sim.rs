//! The simulator on loopback, spoken to in raw SOAP over HTTP (reqwest): sessions, faults,
//! property reads with paging, task tracking with WaitForUpdatesEx, persistence and fault
//! injection.

use std::time::Duration;

use labsync::sim::chaos::{Burst, FaultConfig};
use labsync::sim::{SimHandle, SimOptions, inventory};
use reqwest::StatusCode;

const INVENTORY: &str = include_str!("../examples/sim-inventory.yaml");

fn options() -> SimOptions {
    let inv = inventory::parse(INVENTORY, "example").expect("example inventory parses");
    let mut o = SimOptions::new(inv);
    o.time_scale = 0.0;
    o
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

fn envelope(inner: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"#
        ),
        inner
    )
}

async fn call(c: &reqwest::Client, sim: &SimHandle, inner: &str) -> (StatusCode, String) {
    let resp = c
        .post(&sim.url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "urn:vim25/8.0.3.0")
        .body(envelope(inner))
        .send()
        .await
        .expect("request sent");
    let status = resp.status();
    (status, resp.text().await.expect("body read"))
}

async fn login(c: &reqwest::Client, sim: &SimHandle) {
    let (s, body) = call(
        c,
        sim,
        r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>labsync</userName><password>labsync</password></Login>"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// The text of the first `<tag>…</tag>` after `from` in `body`.
fn text_of<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let start = body.find(&open)?;
    let rest = &body[start..];
    let gt = rest.find('>')?;
    let end = rest.find(&format!("</{tag}>"))?;
    Some(&rest[gt + 1..end])
}

const VIEW_READ: &str = concat!(
    r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this>"#,
    r#"<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.powerState</pathSet>"#,
    r#"<pathSet>layoutEx.disk</pathSet><pathSet>no.such</pathSet></propSet>"#,
    r#"<objectSet><obj type="ContainerView">VIEW</obj><skip>true</skip>"#,
    r#"<selectSet PREFIX:type="TraversalSpec" NSDECL><name>traverseEntities</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>"#,
    r#"</objectSet></specSet><options><maxObjects>3</maxObjects></options></RetrievePropertiesEx>"#
);

async fn create_view(c: &reqwest::Client, sim: &SimHandle) -> String {
    let (s, body) = call(
        c,
        sim,
        concat!(
            r#"<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this>"#,
            r#"<container type="Folder">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"#
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    text_of(&body, "returnval").expect("a view").to_string()
}

#[tokio::test]
async fn service_content_needs_no_session_and_looks_like_vcenter() {
    let sim = labsync::sim::start(options()).await.unwrap();
    let c = client();
    let (s, body) = call(
        &c,
        &sim,
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(text_of(&body, "name"), Some("VMware vCenter Server"));
    assert_eq!(text_of(&body, "apiType"), Some("VirtualCenter"));
    assert_eq!(text_of(&body, "apiVersion"), Some("8.0.3.0"));
    assert!(body.contains(r#"<rootFolder type="Folder">group-d1</rootFolder>"#));
    let versions = c
        .get(sim.url.replace("/sdk", "/sdk/vimServiceVersions.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(versions.contains("<version>8.0.3.0</version>"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_is_an_invalid_login_and_no_session_is_not_authenticated() {
    let sim = labsync::sim::start(options()).await.unwrap();
    let c = client();
    let (s, body) = call(
        &c,
        &sim,
        r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>labsync</userName><password>nope</password></Login>"#,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.contains(r#"<InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin">"#),
        "{body}"
    );
    let (s, body) = call(
        &c,
        &sim,
        r#"<CreateFolder xmlns="urn:vim25"><_this type="Folder">group-d1</_this><name>x</name></CreateFolder>"#,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains(r#"xsi:type="NotAuthenticated""#), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_method_is_method_not_found_naming_receiver_and_method() {
    let sim = labsync::sim::start(options()).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let (s, body) = call(
        &c,
        &sim,
        r#"<MarkAsTemplate xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this></MarkAsTemplate>"#,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains(concat!(
        r#"<MethodNotFoundFault xmlns="urn:vim25" xsi:type="MethodNotFound">"#,
        r#"<receiver type="VirtualMachine">vm-19</receiver><method>MarkAsTemplate</method>"#
    )));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_container_view_read_pages_with_a_token_whatever_the_xsi_prefix() {
    let sim = labsync::sim::start(options()).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let view = create_view(&c, &sim).await;
    let req = VIEW_READ
        .replace("VIEW", &view)
        .replace("PREFIX", "XMLSchema-instance")
        .replace(
            "NSDECL",
            r#"xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance""#,
        );
    let (s, body) = call(&c, &sim, &req).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body.matches("<objects").count(), 3);
    assert!(body.contains(r#"<val xsi:type="VirtualMachinePowerState">poweredOn</val>"#));
    assert!(body.contains(r#"xsi:type="ArrayOfVirtualMachineFileLayoutExDiskLayout""#));
    assert!(
        body.contains("<missingSet"),
        "unknown paths are reported missing"
    );
    let mut names = body.matches("<name>name</name>").count();
    let mut token = text_of(&body, "token").map(str::to_string);
    let mut pages = 1;
    while let Some(t) = token {
        let (s, body) = call(
            &c,
            &sim,
            &format!(
                r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{t}</token></ContinueRetrievePropertiesEx>"#
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        names += body.matches("<name>name</name>").count();
        token = text_of(&body, "token").map(str::to_string);
        pages += 1;
    }
    assert_eq!((pages, names), (3, 7), "7 VMs in pages of 3");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_instant_clone_is_tracked_to_success_with_wait_for_updates_ex() {
    let mut o = options();
    o.time_scale = 0.01;
    let sim = labsync::sim::start(o).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let (s, body) = call(
        &c,
        &sim,
        concat!(
            r#"<InstantClone_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><spec><name>lab-0001-db</name>"#,
            r#"<location><folder type="Folder">group-v7</folder></location>"#,
            r#"<config><key>labsync.lab</key><value xsi:type="xsd:string">lab-0001</value></config>"#,
            r#"<biosUuid>12345678-abcd-1234-cdef-123456789abc</biosUuid></spec></InstantClone_Task>"#
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let task = text_of(&body, "returnval").unwrap().to_string();
    let (s, body) = call(
        &c,
        &sim,
        &format!(
            concat!(
                r#"<CreateFilter xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><spec>"#,
                r#"<propSet><type>Task</type><pathSet>info.state</pathSet><pathSet>info.result</pathSet><pathSet>info.error</pathSet></propSet>"#,
                r#"<objectSet><obj type="Task">{}</obj></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"#
            ),
            task
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut version = String::new();
    let mut state = String::new();
    for _ in 0..50 {
        let (s, body) = call(
            &c,
            &sim,
            &format!(
                r#"<WaitForUpdatesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><version>{version}</version><options><maxWaitSeconds>5</maxWaitSeconds></options></WaitForUpdatesEx>"#
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        if let Some(v) = text_of(&body, "version") {
            version = v.to_string();
        }
        if let Some(i) = body.find("<name>info.state</name>") {
            state = text_of(&body[i..], "val").unwrap_or_default().to_string();
        }
        if state == "success" {
            assert!(
                body.contains(r#"<name>info.result</name><op>assign</op><val type="VirtualMachine" xsi:type="ManagedObjectReference">vm-"#),
                "{body}"
            );
            break;
        }
    }
    assert_eq!(state, "success");
    // The source's chain grew by one: two levels.
    let (_, body) = call(
        &c,
        &sim,
        r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><prop>layoutEx.disk</prop></Fetch>"#,
    )
    .await;
    assert_eq!(body.matches("<chain").count(), 2, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wait_with_nothing_new_returns_empty_after_max_wait_seconds() {
    let sim = labsync::sim::start(options()).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let view = create_view(&c, &sim).await;
    let (s, _) = call(
        &c,
        &sim,
        &format!(
            concat!(
                r#"<CreateFilter xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><spec>"#,
                r#"<propSet><type>ContainerView</type><pathSet>view</pathSet></propSet>"#,
                r#"<objectSet><obj type="ContainerView">{}</obj></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"#
            ),
            view
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let wait = |v: &str| {
        format!(
            r#"<WaitForUpdatesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><version>{v}</version><options><maxWaitSeconds>1</maxWaitSeconds></options></WaitForUpdatesEx>"#
        )
    };
    let (_, first) = call(&c, &sim, &wait("")).await;
    assert!(first.contains("<kind>enter</kind>"), "{first}");
    let version = text_of(&first, "version").unwrap().to_string();
    let (s, second) = call(&c, &sim, &wait(&version)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!second.contains("<returnval"), "{second}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let mut o = options();
    o.state_file = Some(path.clone());
    let sim = labsync::sim::start(o.clone()).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let (s, body) = call(
        &c,
        &sim,
        r#"<CreateFolder xmlns="urn:vim25"><_this type="Folder">group-v7</_this><name>alice</name></CreateFolder>"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    sim.shutdown().await;
    let sim = labsync::sim::start(o).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let (s, body) = call(
        &c,
        &sim,
        r#"<CreateFolder xmlns="urn:vim25"><_this type="Folder">group-v7</_this><name>alice</name></CreateFolder>"#,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains(r#"xsi:type="DuplicateName""#), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_503_bursts_dropped_connections_and_session_expiry_happen() {
    let mut o = options();
    o.faults = Some(FaultConfig {
        http_503: Some(Burst {
            rate: 1.0,
            length: 2,
        }),
        ..FaultConfig::default()
    });
    let sim = labsync::sim::start(o).await.unwrap();
    let (s, _) = call(
        &client(),
        &sim,
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    sim.shutdown().await;

    let mut o = options();
    o.faults = Some(FaultConfig {
        drop_rate: 1.0,
        ..FaultConfig::default()
    });
    let sim = labsync::sim::start(o).await.unwrap();
    let resp = client()
        .post(&sim.url)
        .body(envelope(
            r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
        ))
        .send()
        .await;
    let cut = match resp {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(cut, "the response is cut off mid-body");
    sim.shutdown().await;

    let mut o = options();
    o.faults = Some(FaultConfig {
        session_expiry_secs: Some(0),
        ..FaultConfig::default()
    });
    let sim = labsync::sim::start(o).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let (s, body) = call(
        &c,
        &sim,
        r#"<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>"#,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains(r#"xsi:type="NotAuthenticated""#), "{body}");
    sim.shutdown().await;
}

/// Accepts exactly one certificate, by SHA-256 thumbprint (what labsync's `tls.thumbprint` does).
#[derive(Debug)]
struct Pinned {
    thumbprint: String,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if labsync::sim::server::tls::thumbprint(end_entity.as_ref()) == self.thumbprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("thumbprint mismatch".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn pinned_client(thumbprint: &str) -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(Pinned {
            thumbprint: thumbprint.into(),
            provider,
        }))
        .with_no_client_auth();
    reqwest::Client::builder()
        .cookie_store(true)
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sim_serve_prints_url_and_thumbprint_serves_tls_and_exits_0_on_sigterm() {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_labsync"))
        .args([
            "sim",
            "serve",
            "--inventory",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sim-inventory.yaml"),
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--time-scale",
            "0",
        ])
        .env("LABSYNC_SIM_PASSWORD", "s3cret")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let thumb = lines.next().unwrap().unwrap();
    assert!(
        url.starts_with("url: https://127.0.0.1:") && url.ends_with("/sdk"),
        "{url}"
    );
    let url = url.trim_start_matches("url: ").to_string();
    let thumb = thumb
        .strip_prefix("thumbprint: ")
        .expect("second line is the thumbprint")
        .to_string();
    assert_eq!(thumb.len(), 32 * 3 - 1);
    assert!(
        thumb
            .chars()
            .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase())
    );

    let c = pinned_client(&thumb);
    let login = |pwd: &str| {
        envelope(&format!(
            r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>labsync</userName><password>{pwd}</password></Login>"#
        ))
    };
    let r = c.post(&url).body(login("labsync")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "the default password is replaced"
    );
    let r = c.post(&url).body(login("s3cret")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let wrong = pinned_client(&format!("{}00", "00:".repeat(31)));
    assert!(
        wrong.post(&url).body(login("s3cret")).send().await.is_err(),
        "another pin is refused"
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "exits 0 on SIGTERM");
}

/// Starts `labsync sim serve` with a state file; returns the child and its URL.
fn serve_with_state(state: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_labsync"))
        .args(["sim", "serve", "--inventory"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/sim-inventory.yaml"
        ))
        .args(["--listen", "127.0.0.1:0", "--time-scale", "0", "--state"])
        .arg(state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("url: ")
        .to_string();
    (child, url)
}

async fn raw(c: &reqwest::Client, url: &str, inner: &str) -> (StatusCode, String) {
    let r = c.post(url).body(envelope(inner)).send().await.unwrap();
    let s = r.status();
    (s, r.text().await.unwrap())
}

#[tokio::test]
async fn after_kill_9_a_restart_keeps_every_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let (mut child, url) = serve_with_state(&state);
    let c = client();
    let login = r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>labsync</userName><password>labsync</password></Login>"#;
    assert_eq!(raw(&c, &url, login).await.0, StatusCode::OK);
    let (s, body) = raw(
        &c,
        &url,
        concat!(
            r#"<InstantClone_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><spec><name>kept</name>"#,
            r#"<location><folder type="Folder">group-v7</folder></location></spec></InstantClone_Task>"#
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Time scale 0: the clone completes within the call.
    let (_, depth) = raw(
        &c,
        &url,
        r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><prop>layoutEx.disk</prop></Fetch>"#,
    )
    .await;
    assert_eq!(depth.matches("<chain").count(), 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, url) = serve_with_state(&state);
    let c = client();
    assert_eq!(raw(&c, &url, login).await.0, StatusCode::OK);
    let (_, depth) = raw(
        &c,
        &url,
        r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><prop>layoutEx.disk</prop></Fetch>"#,
    )
    .await;
    assert_eq!(
        depth.matches("<chain").count(),
        2,
        "the grown chain survived"
    );
    let (s, body) = raw(
        &c,
        &url,
        concat!(
            r#"<InstantClone_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><spec><name>kept</name>"#,
            r#"<location><folder type="Folder">group-v7</folder></location></spec></InstantClone_Task>"#
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let task = text_of(&body, "returnval").unwrap().to_string();
    let (_, info) = raw(
        &c,
        &url,
        &format!(r#"<Fetch xmlns="urn:vim25"><_this type="Task">{task}</_this><prop>info.error</prop></Fetch>"#),
    )
    .await;
    assert!(
        info.contains(r#"xsi:type="DuplicateName""#),
        "the clone survived: {info}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn an_injected_task_failure_returns_a_task_that_fails_with_the_fault() {
    let mut o = options();
    let mut methods = std::collections::BTreeMap::new();
    methods.insert(
        "PowerOffVM_Task".to_string(),
        labsync::sim::chaos::MethodFaults {
            failure_rate: 1.0,
            fault: "HostCommunication".into(),
            mode: labsync::sim::chaos::FailureMode::Task,
            latency_ms: 1,
            drop_rate: 0.0,
        },
    );
    o.faults = Some(FaultConfig {
        methods,
        ..FaultConfig::default()
    });
    let sim = labsync::sim::start(o).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    let (s, body) = call(
        &c,
        &sim,
        r#"<PowerOffVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this></PowerOffVM_Task>"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let task = text_of(&body, "returnval").unwrap().to_string();
    let (_, info) = call(
        &c,
        &sim,
        &format!(
            r#"<Fetch xmlns="urn:vim25"><_this type="Task">{task}</_this><prop>info</prop></Fetch>"#
        ),
    )
    .await;
    assert!(info.contains("<state>error</state>"), "{info}");
    assert!(
        info.contains(r#"<fault xsi:type="HostCommunication">"#),
        "{info}"
    );
    let (_, power) = call(
        &c,
        &sim,
        r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-19</_this><prop>runtime.powerState</prop></Fetch>"#,
    )
    .await;
    assert!(
        power.contains(">poweredOn<"),
        "the failed task changed nothing: {power}"
    );
    sim.shutdown().await;
}

/// Runs a task-returning call to its end (time scale 0) and returns the task's `info`.
async fn run_task(c: &reqwest::Client, sim: &SimHandle, inner: &str) -> String {
    let (s, body) = call(c, sim, inner).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let task = text_of(&body, "returnval").expect("a task").to_string();
    let (_, info) = call(
        c,
        sim,
        &format!(
            r#"<Fetch xmlns="urn:vim25"><_this type="Task">{task}</_this><prop>info</prop></Fetch>"#
        ),
    )
    .await;
    info
}

async fn snapshot_of(c: &reqwest::Client, sim: &SimHandle, vm: &str) -> String {
    call(
        c,
        sim,
        &format!(
            r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">{vm}</_this><prop>snapshot</prop></Fetch>"#
        ),
    )
    .await
    .1
}

#[tokio::test]
async fn remove_snapshot_task_removes_one_snapshot_and_keeps_the_one_below_it() {
    let sim = labsync::sim::start(options()).await.unwrap();
    let c = client();
    login(&c, &sim).await;
    // win-client (vm-24) has the snapshot `base` (snapshot-25).
    let info = run_task(
        &c,
        &sim,
        concat!(
            r#"<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-24</_this>"#,
            r#"<name>labsync-hygiene 2026-11-26T10:00:00Z</name><description>made by labsync</description>"#,
            r#"<memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"#
        ),
    )
    .await;
    assert!(info.contains("<state>success</state>"), "{info}");
    let ours = text_of(&info, "result")
        .expect("the new snapshot")
        .to_string();
    let tree = snapshot_of(&c, &sim, "vm-24").await;
    // VirtualMachineSnapshotTree in WSDL order, ours a child of `base` and current.
    let base_at = tree.find("<name>base</name>").expect("base");
    let ours_at = tree.find("<name>labsync-hygiene").expect("ours");
    assert!(base_at < ours_at, "{tree}");
    assert!(
        tree.contains(&format!(
            r#"<currentSnapshot type="VirtualMachineSnapshot">{ours}</currentSnapshot>"#
        )),
        "{tree}"
    );
    let order = [
        "<snapshot ",
        "<vm ",
        "<name>",
        "<description>",
        "<id>",
        "<createTime>",
        "<state>",
        "<quiesced>",
        "<childSnapshotList",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|t| tree.find(t).unwrap_or_else(|| panic!("{t} in {tree}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{tree}");

    let info = run_task(
        &c,
        &sim,
        &format!(
            concat!(
                r#"<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">{}</_this>"#,
                r#"<removeChildren>true</removeChildren><consolidate>true</consolidate></RemoveSnapshot_Task>"#
            ),
            ours
        ),
    )
    .await;
    assert!(info.contains("<state>success</state>"), "{info}");
    assert!(
        info.contains(r#"<entity type="VirtualMachine">vm-24</entity>"#),
        "the task is the VM's: {info}"
    );
    let tree = snapshot_of(&c, &sim, "vm-24").await;
    assert!(tree.contains("<name>base</name>"), "{tree}");
    assert!(!tree.contains("labsync-hygiene"), "{tree}");
    assert!(
        tree.contains(
            r#"<currentSnapshot type="VirtualMachineSnapshot">snapshot-25</currentSnapshot>"#
        ),
        "back on base: {tree}"
    );
    // On top of base again: base plus one delta.
    let (_, layout) = call(
        &c,
        &sim,
        r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-24</_this><prop>layoutEx.disk</prop></Fetch>"#,
    )
    .await;
    assert_eq!(layout.matches("<chain").count(), 2, "{layout}");

    // A snapshot that is gone, the wrong receiver type, a missing parameter.
    let (s, body) = call(
        &c,
        &sim,
        &format!(
            r#"<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">{ours}</_this><removeChildren>true</removeChildren></RemoveSnapshot_Task>"#
        ),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("ManagedObjectNotFound"), "{body}");
    assert!(body.contains(&format!(">{ours}</obj>")), "{body}");
    let (_, body) = call(
        &c,
        &sim,
        r#"<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-24</_this><removeChildren>true</removeChildren></RemoveSnapshot_Task>"#,
    )
    .await;
    assert!(body.contains("MethodNotFound"), "{body}");
    let (_, body) = call(
        &c,
        &sim,
        r#"<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">snapshot-25</_this></RemoveSnapshot_Task>"#,
    )
    .await;
    assert!(body.contains("InvalidArgument"), "{body}");
    assert!(
        snapshot_of(&c, &sim, "vm-24")
            .await
            .contains("<name>base</name>"),
        "a refused call changes nothing"
    );
    sim.shutdown().await;
}
