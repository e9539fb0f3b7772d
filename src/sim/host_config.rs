//! A host's `config` (`HostConfigInfo`): the ESXi product, a standard switch `vSwitch0` on two
//! 25 GbE uplinks with a port group per network of the datacenter and the management VMkernel
//! NIC `vmk0`, DNS and routing, vMotion, services, firewall, power policy and time. Static but
//! per host: its name gives the DNS names, its id the management address.

use super::props::dc_all;
use super::value::{DataObject, Value};
use super::world::{Entity, World};

const VSWITCH: &str = "vSwitch0";
const MANAGEMENT: &str = "Management Network";
const UPLINKS: [&str; 2] = ["vmnic0", "vmnic1"];

fn bool_fields(kind: &'static str, fields: &[(&'static str, bool)]) -> DataObject {
    let mut o = DataObject::new(kind);
    for (f, b) in fields {
        o = o.with(f, Value::Bool(*b));
    }
    o
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array("string", items.into_iter().map(Value::str).collect())
}

fn vswitch_key() -> String {
    format!("key-vim.host.VirtualSwitch-{VSWITCH}")
}

fn portgroup_key(name: &str) -> String {
    format!("key-vim.host.PortGroup-{name}")
}

fn pnic_key(device: &str) -> String {
    format!("key-vim.host.PhysicalNic-{device}")
}

/// The host's management address: `10.200.a.b` from its id.
fn management_ip(e: &Entity) -> String {
    let n: u32 =
        e.id.trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or(0);
    format!("10.200.{}.{}", n / 250 % 256, n % 250 + 2)
}

/// A MAC address in `prefix`'s range, stable per host and `what`.
fn mac(w: &World, e: &Entity, prefix: &str, what: &str) -> String {
    let hex: String = w
        .derived_uuid(&format!("{}/{what}", e.id))
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(6)
        .collect();
    // Six hex digits (the derived UUID has 32), so the slices are in range.
    format!("{prefix}:{}:{}:{}", &hex[0..2], &hex[2..4], &hex[4..6])
}

/// The teaming, security, offload and shaping policy; `full` for the switch's own and the
/// computed ones, the empty (inherit everything) policy of a port group's spec otherwise.
fn policy(full: bool) -> Value {
    if !full {
        return DataObject::new("HostNetworkPolicy")
            .with(
                "security",
                DataObject::new("HostNetworkSecurityPolicy").into_value(),
            )
            .with(
                "nicTeaming",
                DataObject::new("HostNicTeamingPolicy")
                    .with(
                        "failureCriteria",
                        DataObject::new("HostNicFailureCriteria").into_value(),
                    )
                    .into_value(),
            )
            .with(
                "offloadPolicy",
                DataObject::new("HostNetOffloadCapabilities").into_value(),
            )
            .with(
                "shapingPolicy",
                DataObject::new("HostNetworkTrafficShapingPolicy").into_value(),
            )
            .into_value();
    }
    DataObject::new("HostNetworkPolicy")
        .with(
            "security",
            bool_fields(
                "HostNetworkSecurityPolicy",
                &[
                    ("allowPromiscuous", false),
                    ("macChanges", false),
                    ("forgedTransmits", false),
                ],
            )
            .into_value(),
        )
        .with(
            "nicTeaming",
            DataObject::new("HostNicTeamingPolicy")
                .with("policy", Value::str("loadbalance_srcid"))
                .with("reversePolicy", Value::Bool(true))
                .with("notifySwitches", Value::Bool(true))
                .with("rollingOrder", Value::Bool(false))
                .with(
                    "failureCriteria",
                    DataObject::new("HostNicFailureCriteria")
                        .with("checkSpeed", Value::str("minimum"))
                        .with("speed", Value::Int(10))
                        .with("checkDuplex", Value::Bool(false))
                        .with("fullDuplex", Value::Bool(false))
                        .with("checkErrorPercent", Value::Bool(false))
                        .with("percentage", Value::Int(0))
                        .with("checkBeacon", Value::Bool(false))
                        .into_value(),
                )
                .with(
                    "nicOrder",
                    DataObject::new("HostNicOrderPolicy")
                        .with("activeNic", strings(UPLINKS))
                        .into_value(),
                )
                .into_value(),
        )
        .with("offloadPolicy", offload())
        .with(
            "shapingPolicy",
            DataObject::new("HostNetworkTrafficShapingPolicy")
                .with("enabled", Value::Bool(false))
                .into_value(),
        )
        .into_value()
}

fn offload() -> Value {
    bool_fields(
        "HostNetOffloadCapabilities",
        &[
            ("csumOffload", true),
            ("tcpSegmentation", true),
            ("zeroCopyXmit", true),
        ],
    )
    .into_value()
}

fn link(speed_mb: i32) -> Value {
    DataObject::new("PhysicalNicLinkInfo")
        .with("speedMb", Value::Int(speed_mb))
        .with("duplex", Value::Bool(true))
        .into_value()
}

/// `vmk0`, the management VMkernel NIC, under a `key` (VirtualNicManager prefixes it).
fn vmk0(w: &World, e: &Entity, key: &str) -> Value {
    DataObject::new("HostVirtualNic")
        .with("device", Value::str("vmk0"))
        .with("key", Value::str(key))
        .with("portgroup", Value::str(MANAGEMENT))
        .with(
            "spec",
            DataObject::new("HostVirtualNicSpec")
                .with(
                    "ip",
                    DataObject::new("HostIpConfig")
                        .with("dhcp", Value::Bool(false))
                        .with("ipAddress", Value::str(management_ip(e)))
                        .with("subnetMask", Value::str("255.255.0.0"))
                        .into_value(),
                )
                .with("mac", Value::str(mac(w, e, "00:50:56", "vmk0")))
                .with("portgroup", Value::str(MANAGEMENT))
                .with("mtu", Value::Int(1500))
                .with("tsoEnabled", Value::Bool(true))
                .with("netStackInstanceKey", Value::str("defaultTcpipStack"))
                .with("systemOwned", Value::Bool(false))
                .into_value(),
        )
        .with("port", Value::str("key-vim.host.PortGroup.Port-33554436"))
        .into_value()
}

fn network(w: &World, e: &Entity) -> Value {
    let mut groups: Vec<String> = vec![MANAGEMENT.to_string()];
    for n in dc_all(w, &e.id, "Network") {
        if let Some(net) = w.get(&n.value) {
            groups.push(net.name.clone());
        }
    }
    let vswitch = DataObject::new("HostVirtualSwitch")
        .with("name", Value::str(VSWITCH))
        .with("key", Value::str(vswitch_key()))
        .with("numPorts", Value::Int(2560))
        .with("numPortsAvailable", Value::Int(2544))
        .with("mtu", Value::Int(1500))
        .with(
            "portgroup",
            Value::Array(
                "string",
                groups
                    .iter()
                    .map(|g| Value::str(portgroup_key(g)))
                    .collect(),
            ),
        )
        .with(
            "pnic",
            Value::Array(
                "string",
                UPLINKS.iter().map(|p| Value::str(pnic_key(p))).collect(),
            ),
        )
        .with(
            "spec",
            DataObject::new("HostVirtualSwitchSpec")
                .with("numPorts", Value::Int(128))
                .typed(
                    "bridge",
                    DataObject::new("HostVirtualSwitchBondBridge")
                        .with("nicDevice", strings(UPLINKS))
                        .with(
                            "beacon",
                            DataObject::new("HostVirtualSwitchBeaconConfig")
                                .with("interval", Value::Int(1))
                                .into_value(),
                        )
                        .with(
                            "linkDiscoveryProtocolConfig",
                            DataObject::new("LinkDiscoveryProtocolConfig")
                                .with("protocol", Value::str("cdp"))
                                .with("operation", Value::str("listen"))
                                .into_value(),
                        )
                        .into_value(),
                )
                .with("policy", policy(true))
                .with("mtu", Value::Int(1500))
                .into_value(),
        )
        .into_value();
    let portgroups = groups
        .iter()
        .map(|g| {
            let mut pg = DataObject::new("HostPortGroup").with("key", Value::str(portgroup_key(g)));
            if g == MANAGEMENT {
                pg = pg.with(
                    "port",
                    Value::Array(
                        "HostPortGroupPort",
                        vec![
                            DataObject::new("HostPortGroupPort")
                                .with("key", Value::str("key-vim.host.PortGroup.Port-33554436"))
                                .with(
                                    "mac",
                                    Value::Array(
                                        "string",
                                        vec![Value::str(mac(w, e, "00:50:56", "vmk0"))],
                                    ),
                                )
                                .with("type", Value::str("host"))
                                .into_value(),
                        ],
                    ),
                );
            }
            pg.with("vswitch", Value::str(vswitch_key()))
                .with("computedPolicy", policy(true))
                .with(
                    "spec",
                    DataObject::new("HostPortGroupSpec")
                        .with("name", Value::str(g.clone()))
                        .with("vlanId", Value::Int(0))
                        .with("vswitchName", Value::str(VSWITCH))
                        .with("policy", policy(false))
                        .into_value(),
                )
                .into_value()
        })
        .collect();
    let pnics = UPLINKS
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            DataObject::new("PhysicalNic")
                .with("key", Value::str(pnic_key(dev)))
                .with("device", Value::str(*dev))
                .with("pci", Value::str(format!("0000:31:00.{i}")))
                .with("driver", Value::str("i40en"))
                .with("linkSpeed", link(25_000))
                .with(
                    "validLinkSpecification",
                    Value::Array("PhysicalNicLinkInfo", vec![link(10_000), link(25_000)]),
                )
                .with(
                    "spec",
                    DataObject::new("PhysicalNicSpec")
                        .with(
                            "ip",
                            DataObject::new("HostIpConfig")
                                .with("dhcp", Value::Bool(false))
                                .into_value(),
                        )
                        .with("linkSpeed", link(25_000))
                        .with("enableEnhancedNetworkingStack", Value::Bool(false))
                        .with("ensInterruptEnabled", Value::Bool(false))
                        .into_value(),
                )
                .with("wakeOnLanSupported", Value::Bool(false))
                .with("mac", Value::str(mac(w, e, "b4:96:91", dev)))
                .with("vmDirectPathGen2Supported", Value::Bool(false))
                .with("resourcePoolSchedulerAllowed", Value::Bool(true))
                .with("autoNegotiateSupported", Value::Bool(true))
                .into_value()
        })
        .collect();
    DataObject::new("HostNetworkInfo")
        .with("vswitch", Value::Array("HostVirtualSwitch", vec![vswitch]))
        .with("portgroup", Value::Array("HostPortGroup", portgroups))
        .with("pnic", Value::Array("PhysicalNic", pnics))
        .with(
            "vnic",
            Value::Array(
                "HostVirtualNic",
                vec![vmk0(w, e, "key-vim.host.VirtualNic-vmk0")],
            ),
        )
        .typed("dnsConfig", dns(e))
        .typed("ipRouteConfig", gateway())
        .with(
            "routeTableInfo",
            DataObject::new("HostIpRouteTableInfo")
                .with("ipRoute", Value::Array("HostIpRouteEntry", routes()))
                .into_value(),
        )
        .with("ipV6Enabled", Value::Bool(true))
        .with("atBootIpV6Enabled", Value::Bool(true))
        .with(
            "netStackInstance",
            Value::Array(
                "HostNetStackInstance",
                vec![
                    DataObject::new("HostNetStackInstance")
                        .with("key", Value::str("defaultTcpipStack"))
                        .with("name", Value::str("defaultTcpipStack"))
                        .typed("dnsConfig", dns(e))
                        .typed("ipRouteConfig", gateway())
                        .with("requestedMaxNumberOfConnections", Value::Int(11000))
                        .with("congestionControlAlgorithm", Value::str("newreno"))
                        .with("ipV6Enabled", Value::Bool(true))
                        .with(
                            "routeTableConfig",
                            DataObject::new("HostIpRouteTableConfig")
                                .with(
                                    "ipRoute",
                                    Value::Array(
                                        "HostIpRouteOp",
                                        routes()
                                            .into_iter()
                                            .map(|r| {
                                                DataObject::new("HostIpRouteOp")
                                                    .with("changeOperation", Value::str("ignore"))
                                                    .with("route", r)
                                                    .into_value()
                                            })
                                            .collect(),
                                    ),
                                )
                                .into_value(),
                        )
                        .into_value(),
                ],
            ),
        )
        .into_value()
}

/// DNS of the management network: the host's own name split into host and domain.
fn dns(e: &Entity) -> Value {
    let (short, domain) = e.name.split_once('.').unwrap_or((e.name.as_str(), ""));
    DataObject::new("HostDnsConfig")
        .with("dhcp", Value::Bool(false))
        .with("virtualNicDevice", Value::str("vmk0"))
        .with("hostName", Value::str(short))
        .with("domainName", Value::str(domain))
        .with("address", strings(["10.200.0.1"]))
        .with("searchDomain", strings([domain]))
        .into_value()
}

fn gateway() -> Value {
    DataObject::new("HostIpRouteConfig")
        .with("defaultGateway", Value::str("10.200.0.1"))
        .with("gatewayDevice", Value::str("vmk0"))
        .into_value()
}

/// The default route and the management subnet, both through `vmk0`.
fn routes() -> Vec<Value> {
    [("0.0.0.0", 0, "10.200.0.1"), ("10.200.0.0", 16, "0.0.0.0")]
        .into_iter()
        .map(|(net, len, gw)| {
            DataObject::new("HostIpRouteEntry")
                .with("network", Value::str(net))
                .with("prefixLength", Value::Int(len))
                .with("gateway", Value::str(gw))
                .with("deviceName", Value::str("vmk0"))
                .into_value()
        })
        .collect()
}

/// The kinds of traffic `vmk0` carries (vMotion and management) or could.
fn nic_manager(w: &World, e: &Entity) -> Value {
    let config = |kind: &str, selected: bool| {
        DataObject::new("VirtualNicManagerNetConfig")
            .with("nicType", Value::str(kind))
            .with("multiSelectAllowed", Value::Bool(true))
            .with(
                "candidateVnic",
                Value::Array(
                    "HostVirtualNic",
                    vec![vmk0(w, e, &format!("{kind}.key-vim.host.VirtualNic-vmk0"))],
                ),
            )
            .opt(
                "selectedVnic",
                selected
                    .then(|| strings([format!("{kind}.key-vim.host.VirtualNic-vmk0").as_str()])),
            )
            .into_value()
    };
    DataObject::new("HostVirtualNicManagerInfo")
        .with(
            "netConfig",
            Value::Array(
                "VirtualNicManagerNetConfig",
                vec![
                    config("faultToleranceLogging", false),
                    config("management", true),
                    config("vmotion", true),
                ],
            ),
        )
        .into_value()
}

fn service(key: &str, label: &str, running: bool, ruleset: &[&str]) -> Value {
    DataObject::new("HostService")
        .with("key", Value::str(key))
        .with("label", Value::str(label))
        .with("required", Value::Bool(false))
        .with("uninstallable", Value::Bool(false))
        .with("running", Value::Bool(running))
        .opt(
            "ruleset",
            (!ruleset.is_empty()).then(|| strings(ruleset.iter().copied())),
        )
        .with("policy", Value::str(if running { "on" } else { "off" }))
        .with(
            "sourcePackage",
            DataObject::new("HostServiceSourcePackage")
                .with("sourcePackageName", Value::str("esx-base"))
                .with(
                    "description",
                    Value::str("This VIB contains all of the base functionality of vSphere ESXi."),
                )
                .into_value(),
        )
        .into_value()
}

fn ruleset(
    key: &str,
    label: &str,
    port: i32,
    direction: &str,
    protocol: &str,
    service: Option<&str>,
) -> Value {
    DataObject::new("HostFirewallRuleset")
        .with("key", Value::str(key))
        .with("label", Value::str(label))
        .with("required", Value::Bool(false))
        .with(
            "rule",
            Value::Array(
                "HostFirewallRule",
                vec![
                    DataObject::new("HostFirewallRule")
                        .with("port", Value::Int(port))
                        .with(
                            "direction",
                            Value::Enum("HostFirewallRuleDirection", direction.into()),
                        )
                        .with(
                            "portType",
                            Value::Enum("HostFirewallRulePortType", "dst".into()),
                        )
                        .with("protocol", Value::str(protocol))
                        .into_value(),
                ],
            ),
        )
        .opt("service", service.map(Value::str))
        .with("enabled", Value::Bool(true))
        .with(
            "allowedHosts",
            DataObject::new("HostFirewallRulesetIpList")
                .with("allIp", Value::Bool(true))
                .into_value(),
        )
        .into_value()
}

fn power_policy(key: i32, short: &str, name: &str, description: &str) -> Value {
    DataObject::new("HostPowerPolicy")
        .with("key", Value::Int(key))
        .with("name", Value::str(name))
        .with("shortName", Value::str(short))
        .with("description", Value::str(description))
        .into_value()
}

/// `config`.
pub(super) fn host_config(w: &World, e: &Entity, product: Value) -> Value {
    let balanced = power_policy(
        2,
        "dynamic",
        "Balanced",
        "Reduce energy consumption with minimal performance compromise",
    );
    DataObject::new("HostConfigInfo")
        .with("host", Value::Ref(e.moref()))
        .with("product", product)
        .with(
            "deploymentInfo",
            bool_fields("HostDeploymentInfo", &[("bootedFromStatelessCache", false)]).into_value(),
        )
        .with(
            "hyperThread",
            bool_fields(
                "HostHyperThreadScheduleInfo",
                &[("available", true), ("active", true), ("config", true)],
            )
            .into_value(),
        )
        .with("network", network(w, e))
        .with(
            "vmotion",
            DataObject::new("HostVMotionInfo")
                .with(
                    "netConfig",
                    DataObject::new("HostVMotionNetConfig")
                        .with(
                            "candidateVnic",
                            Value::Array(
                                "HostVirtualNic",
                                vec![vmk0(
                                    w,
                                    e,
                                    "VMotionConfig.vmotion.key-vim.host.VirtualNic-vmk0",
                                )],
                            ),
                        )
                        .with(
                            "selectedVnic",
                            Value::str("VMotionConfig.vmotion.key-vim.host.VirtualNic-vmk0"),
                        )
                        .into_value(),
                )
                .with(
                    "ipConfig",
                    DataObject::new("HostIpConfig")
                        .with("dhcp", Value::Bool(false))
                        .with("ipAddress", Value::str(management_ip(e)))
                        .with("subnetMask", Value::str("255.255.0.0"))
                        .into_value(),
                )
                .into_value(),
        )
        .with("virtualNicManagerInfo", nic_manager(w, e))
        .with(
            "capabilities",
            bool_fields(
                "HostNetCapabilities",
                &[
                    ("canSetPhysicalNicLinkSpeed", true),
                    ("supportsNicTeaming", true),
                ],
            )
            .with(
                "nicTeamingPolicy",
                strings([
                    "loadbalance_ip",
                    "loadbalance_srcmac",
                    "loadbalance_srcid",
                    "failover_explicit",
                ]),
            )
            .with("supportsVlan", Value::Bool(true))
            .with("usesServiceConsoleNic", Value::Bool(false))
            .with("supportsNetworkHints", Value::Bool(true))
            .with("vswitchConfigSupported", Value::Bool(true))
            .with("vnicConfigSupported", Value::Bool(true))
            .with("ipRouteConfigSupported", Value::Bool(true))
            .with("dnsConfigSupported", Value::Bool(true))
            .with("dhcpOnVnicSupported", Value::Bool(true))
            .with("ipV6Supported", Value::Bool(true))
            .with("backupNfcNiocSupported", Value::Bool(true))
            .into_value(),
        )
        .with(
            "datastoreCapabilities",
            bool_fields(
                "HostDatastoreSystemCapabilities",
                &[
                    ("nfsMountCreationRequired", true),
                    ("nfsMountCreationSupported", true),
                    ("localDatastoreSupported", false),
                    ("vmfsExtentExpansionSupported", true),
                ],
            )
            .into_value(),
        )
        .with("offloadCapabilities", offload())
        .with(
            "service",
            DataObject::new("HostServiceInfo")
                .with(
                    "service",
                    Value::Array(
                        "HostService",
                        vec![
                            service("DCUI", "Direct Console UI", true, &[]),
                            service("TSM-SSH", "SSH", false, &["sshServer"]),
                            service("ntpd", "NTP Daemon", true, &["ntpClient"]),
                            service("vpxa", "VMware vCenter Agent", true, &["vpxHeartbeats"]),
                        ],
                    ),
                )
                .into_value(),
        )
        .with(
            "firewall",
            DataObject::new("HostFirewallInfo")
                .with(
                    "defaultPolicy",
                    bool_fields(
                        "HostFirewallDefaultPolicy",
                        &[("incomingBlocked", true), ("outgoingBlocked", true)],
                    )
                    .into_value(),
                )
                .with(
                    "ruleset",
                    Value::Array(
                        "HostFirewallRuleset",
                        vec![
                            ruleset(
                                "sshServer",
                                "SSH Server",
                                22,
                                "inbound",
                                "tcp",
                                Some("TSM-SSH"),
                            ),
                            ruleset(
                                "ntpClient",
                                "NTP Client",
                                123,
                                "outbound",
                                "udp",
                                Some("ntpd"),
                            ),
                            ruleset(
                                "vpxHeartbeats",
                                "VMware vCenter Agent",
                                902,
                                "outbound",
                                "udp",
                                Some("vpxa"),
                            ),
                            ruleset("vMotion", "vMotion", 8000, "inbound", "tcp", None),
                        ],
                    ),
                )
                .into_value(),
        )
        .with(
            "autoStart",
            DataObject::new("HostAutoStartManagerConfig")
                .with(
                    "defaults",
                    DataObject::new("AutoStartDefaults")
                        .with("enabled", Value::Bool(false))
                        .with("startDelay", Value::Int(120))
                        .with("stopDelay", Value::Int(120))
                        .with("waitForHeartbeat", Value::Bool(false))
                        .with("stopAction", Value::str("PowerOff"))
                        .into_value(),
                )
                .into_value(),
        )
        .with(
            "dateTimeInfo",
            DataObject::new("HostDateTimeInfo")
                .with(
                    "timeZone",
                    DataObject::new("HostDateTimeSystemTimeZone")
                        .with("key", Value::str("UTC"))
                        .with("name", Value::str("UTC"))
                        .with("description", Value::str("UTC"))
                        .with("gmtOffset", Value::Int(0))
                        .into_value(),
                )
                .with("systemClockProtocol", Value::str("ntp"))
                .with(
                    "ntpConfig",
                    DataObject::new("HostNtpConfig")
                        .with("server", strings(["10.200.0.1"]))
                        .into_value(),
                )
                .into_value(),
        )
        .with(
            "flags",
            bool_fields("HostFlagInfo", &[("backgroundSnapshotsEnabled", false)]).into_value(),
        )
        .with("adminDisabled", Value::Bool(false))
        .with(
            "lockdownMode",
            Value::Enum("HostLockdownMode", "lockdownDisabled".into()),
        )
        .with(
            "authenticationManagerInfo",
            DataObject::new("HostAuthenticationManagerInfo")
                .typed(
                    "authConfig",
                    bool_fields("HostLocalAuthenticationInfo", &[("enabled", true)]).into_value(),
                )
                .into_value(),
        )
        .with(
            "powerSystemCapability",
            DataObject::new("PowerSystemCapability")
                .with(
                    "availablePolicy",
                    Value::Array(
                        "HostPowerPolicy",
                        vec![
                            power_policy(
                                1,
                                "static",
                                "High performance",
                                "Do not use any power management features",
                            ),
                            balanced.clone(),
                            power_policy(
                                3,
                                "low",
                                "Low power",
                                "Reduce energy consumption at the risk of lower performance",
                            ),
                            power_policy(
                                4,
                                "custom",
                                "Custom",
                                "User-defined power management policy",
                            ),
                        ],
                    ),
                )
                .into_value(),
        )
        .with(
            "powerSystemInfo",
            DataObject::new("PowerSystemInfo")
                .with("currentPolicy", balanced)
                .into_value(),
        )
        .with("wakeOnLanCapable", Value::Bool(false))
        .into_value()
}
