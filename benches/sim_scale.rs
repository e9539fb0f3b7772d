//! Scale benchmark of the simulator: 10,000 VMs load, then a container-view read of all of them
//! with 8 properties each, paged, over loopback SOAP. Prints wall times and peak RSS (VmHWM).
//! Run: `cargo bench --bench sim_scale` (figures go to BENCHMARKS.md).

use std::time::{Duration, Instant};

use labsync::sim::{SimOptions, inventory};

const VMS: u32 = 10_000;
const PAGE: u32 = 1_000;
const CLONES: u32 = 1_000;

fn inventory_text() -> String {
    format!(
        r#"
datacenters:
  - name: DC1
    folders: [bulk]
    datastores: [{{ name: ds1, capacity_gb: 100000 }}]
    networks: [lab-net]
    clusters:
      - {{ name: C1, hosts: [h1, h2, h3, h4] }}
    vms:
      - {{ name: source, folder: bulk, frozen: true }}
      - {{ name: "bulk-{{n}}", count: {VMS}, folder: bulk, extra_config: {{ labsync.owner: bench, labsync.lab: l1 }} }}
"#
    )
}

fn envelope(inner: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some(&s[a..b])
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let t0 = Instant::now();
        let inv = inventory::parse(&inventory_text(), "bench").expect("inventory");
        let mut opts = SimOptions::new(inv);
        opts.time_scale = 0.0;
        let sim = labsync::sim::start(opts).await.expect("simulator starts");
        let load = t0.elapsed();
        let c = reqwest::Client::builder().cookie_store(true).build().expect("client");
        let post = |body: String| {
            let c = c.clone();
            let url = sim.url.clone();
            async move {
                let r = c.post(url).body(envelope(&body)).send().await.expect("send");
                assert!(r.status().is_success(), "HTTP {}", r.status());
                r.text().await.expect("body")
            }
        };
        post(r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>labsync</userName><password>labsync</password></Login>"#.into()).await;
        let view = post(r#"<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"#.into()).await;
        let view = between(&view, "<returnval type=\"ContainerView\">", "</returnval>").expect("view").to_string();
        let paths = ["name", "parent", "runtime.powerState", "runtime.host", "runtime.instantCloneFrozen", "config.uuid", "config.extraConfig", "layoutEx.disk"];
        let path_xml: String = paths.iter().map(|p| format!("<pathSet>{p}</pathSet>")).collect();
        let t1 = Instant::now();
        let mut body = post(format!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type>{path_xml}</propSet><objectSet><obj type="ContainerView">{view}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>t</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options><maxObjects>{PAGE}</maxObjects></options></RetrievePropertiesEx>"#
        )).await;
        let mut objects = body.matches("<objects").count();
        let mut pages = 1;
        let mut bytes = body.len();
        while let Some(token) = between(&body, "<token>", "</token>").map(str::to_string) {
            body = post(format!(
                r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{token}</token></ContinueRetrievePropertiesEx>"#
            )).await;
            objects += body.matches("<objects").count();
            bytes += body.len();
            pages += 1;
        }
        let read = t1.elapsed();
        assert_eq!(objects, VMS as usize + 1, "every VM read");
        // Instant clones at time scale 0: the cost of the simulator itself per clone.
        let first = post(format!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type="ContainerView">{view}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>t</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options><maxObjects>1</maxObjects></options></RetrievePropertiesEx>"#
        )).await;
        let source = between(&first, "<obj type=\"VirtualMachine\">", "</obj>").expect("source").to_string();
        let t2 = Instant::now();
        for i in 0..CLONES {
            let r = post(format!(
                r#"<InstantClone_Task xmlns="urn:vim25"><_this type="VirtualMachine">{source}</_this><spec><name>clone-{i}</name><config><key>labsync.lab</key><value xsi:type="xsd:string">l{i}</value></config></spec></InstantClone_Task>"#
            )).await;
            assert!(r.contains("<returnval type=\"Task\">"), "{r}");
        }
        let clones = t2.elapsed();
        println!("sim_scale: {} VMs, {} properties each, pages of {PAGE}", VMS + 1, paths.len());
        println!("  start (parse + build inventory + listen): {:>8.1} ms", ms(load));
        println!("  read all ({pages} pages, {:.1} MB of XML):   {:>8.1} ms", bytes as f64 / 1e6, ms(read));
        println!(
            "  {CLONES} instant clones, one call each:       {:>8.1} ms ({:.0} clones/s)",
            ms(clones),
            f64::from(CLONES) / clones.as_secs_f64()
        );
        println!("  peak RSS (VmHWM, whole process):          {:>8} kB", peak_rss_kb().map_or("?".into(), |k| k.to_string()));
        sim.shutdown().await;
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
