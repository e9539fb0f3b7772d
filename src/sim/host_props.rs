//! A host's properties: `summary`, `hardware`, `runtime`, `licensableResource`, `config` (in
//! [`super::host_config`]) and the objects it serves. Every simulated host is the same two-socket server (see [`CPU_MHZ`] and friends);
//! what varies is its name, its identity and the VMs running on it.

use super::host_config;
use super::props::{PropError, dc_all, status};
use super::value::{DataObject, Value};
use super::vm_props;
use super::world::{Entity, World};
use crate::model::PowerState;

/// Top-level `HostSystem` properties besides the `ManagedEntity` ones, in WSDL order. Those not
/// modelled (`capability`, `datastoreBrowser`, the remediation and answer-file states,
/// `systemResources`) read as unset; `configManager` names no managers (the simulator has none
/// of the host's managed objects).
pub(super) const PROPS: &[&str] = &[
    "runtime",
    "summary",
    "hardware",
    "capability",
    "licensableResource",
    "remediationState",
    "precheckRemediationResult",
    "remediationResult",
    "complianceCheckState",
    "complianceCheckResult",
    "configManager",
    "config",
    "vm",
    "datastore",
    "network",
    "datastoreBrowser",
    "systemResources",
    "answerFileValidationState",
    "answerFileValidationResult",
];

/// CPU packages (sockets) of every simulated host.
pub(super) const CPU_PACKAGES: i32 = 2;
/// Cores per package.
pub(super) const CORES_PER_PACKAGE: i32 = 24;
/// Clock of one core, MHz.
pub(super) const CPU_MHZ: i32 = 2800;
/// Physical memory of every simulated host, bytes (512 GiB).
pub(super) const MEMORY_BYTES: i64 = 512 << 30;
/// What ESXi itself keeps of a host's memory, MB.
const ESXI_MEMORY_MB: i32 = 4096;
const CPU_MODEL: &str = "Intel(R) Xeon(R) Gold 6342 CPU @ 2.80GHz";
const VENDOR: &str = "Dell Inc.";
const MODEL: &str = "PowerEdge R650";
/// vSphere's largest virtual disk (62 TB), as hosts report it.
pub(super) const MAX_VIRTUAL_DISK: i64 = 68_169_720_922_112;

/// Total CPU of one host, MHz.
pub(super) fn host_cpu_mhz() -> i64 {
    i64::from(CPU_PACKAGES * CORES_PER_PACKAGE) * i64::from(CPU_MHZ)
}

/// One property of a host.
pub(super) fn host_prop(w: &World, e: &Entity, name: &str) -> Result<Option<Value>, PropError> {
    let v = match name {
        "vm" => Some(Value::refs(w.vms_on_host(&e.id))),
        "datastore" => Some(Value::refs(dc_all(w, &e.id, "Datastore"))),
        "network" => Some(Value::refs(dc_all(w, &e.id, "Network"))),
        "summary" => Some(summary(w, e)),
        "runtime" => Some(runtime(w)),
        "hardware" => Some(hardware(w, e)),
        "config" => Some(host_config::host_config(w, e, product())),
        "configManager" => Some(DataObject::new("HostConfigManager").into_value()),
        "licensableResource" => Some(
            DataObject::new("HostLicensableResourceInfo")
                .with(
                    "resource",
                    Value::Array(
                        "KeyAnyValue",
                        vec![
                            key_any("numCpuPackages", CPU_PACKAGES),
                            key_any("numCpuCores", CPU_PACKAGES * CORES_PER_PACKAGE),
                        ],
                    ),
                )
                .into_value(),
        ),
        p if PROPS.contains(&p) => None,
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}

fn key_any(key: &str, n: i32) -> Value {
    DataObject::new("KeyAnyValue")
        .with("key", Value::str(key))
        .typed("value", Value::Int(n))
        .into_value()
}

/// The host's BIOS UUID and service tag, stable for a given inventory.
fn identity(w: &World, e: &Entity) -> (String, String) {
    let uuid = w.derived_uuid(&format!("{}/host", e.id));
    let tag: String = uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(7)
        .collect::<String>()
        .to_ascii_uppercase();
    (uuid, tag)
}

fn other_identifying_info(tag: &str) -> Value {
    let item = |value: &str, key: &str, label: &str, summary: &str| {
        DataObject::new("HostSystemIdentificationInfo")
            .with("identifierValue", Value::str(value))
            .with(
                "identifierType",
                DataObject::new("ElementDescription")
                    .with("label", Value::str(label))
                    .with("summary", Value::str(summary))
                    .with("key", Value::str(key))
                    .into_value(),
            )
            .into_value()
    };
    Value::Array(
        "HostSystemIdentificationInfo",
        vec![
            item(
                "unknown",
                "AssetTag",
                "Asset Tag",
                "Asset tag of the system",
            ),
            item(
                tag,
                "ServiceTag",
                "Service tag",
                "Service tag of the system",
            ),
            item(
                tag,
                "EnclosureSerialNumberTag",
                "Enclosure serial number tag",
                "Enclosure serial number tag of the system",
            ),
            item(
                tag,
                "SerialNumberTag",
                "Serial number tag",
                "Serial number tag of the system",
            ),
        ],
    )
}

impl World {
    /// A host's physical memory: as the inventory sized it, else the default.
    pub fn host_memory_bytes(&self, host: &str) -> i64 {
        self.host_memory.get(host).copied().unwrap_or(MEMORY_BYTES)
    }
}

fn summary(w: &World, e: &Entity) -> Value {
    let (uuid, tag) = identity(w, e);
    let (mut cpu, mut mem) = (0i64, i64::from(ESXI_MEMORY_MB));
    for r in w.vms_on_host(&e.id) {
        if let Some(vm) = w.vm(&r.value).filter(|v| v.power == PowerState::PoweredOn) {
            let u = vm_props::usage(vm);
            cpu += i64::from(u.cpu_mhz);
            mem += i64::from(u.host_memory_mb);
        }
    }
    let int = |n: i64| Value::Int(i32::try_from(n).unwrap_or(i32::MAX));
    DataObject::new("HostListSummary")
        .with("host", Value::Ref(e.moref()))
        .with(
            "hardware",
            DataObject::new("HostHardwareSummary")
                .with("vendor", Value::str(VENDOR))
                .with("model", Value::str(MODEL))
                .with("uuid", Value::str(uuid))
                .with("otherIdentifyingInfo", other_identifying_info(&tag))
                .with("memorySize", Value::Long(w.host_memory_bytes(&e.id)))
                .with("cpuModel", Value::str(CPU_MODEL))
                .with("cpuMhz", Value::Int(CPU_MHZ))
                .with("numCpuPkgs", Value::Int(CPU_PACKAGES))
                .with("numCpuCores", Value::Int(CPU_PACKAGES * CORES_PER_PACKAGE))
                .with(
                    "numCpuThreads",
                    Value::Int(CPU_PACKAGES * CORES_PER_PACKAGE * 2),
                )
                .with("numNics", Value::Int(4))
                .with("numHBAs", Value::Int(2))
                .into_value(),
        )
        .with("runtime", runtime(w))
        .with(
            "config",
            DataObject::new("HostConfigSummary")
                .with("name", Value::str(e.name.clone()))
                .with("port", Value::Int(443))
                .with("product", product())
                .with("vmotionEnabled", Value::Bool(true))
                .with("faultToleranceEnabled", Value::Bool(false))
                .into_value(),
        )
        .with(
            "quickStats",
            DataObject::new("HostListSummaryQuickStats")
                .with("overallCpuUsage", int(cpu))
                .with("overallMemoryUsage", int(mem))
                .with("distributedCpuFairness", Value::Int(10000))
                .with("distributedMemoryFairness", Value::Int(10000))
                .with("availablePMemCapacity", Value::Int(0))
                .into_value(),
        )
        .with("overallStatus", status())
        .with("rebootRequired", Value::Bool(false))
        .into_value()
}

/// The ESXi build every host runs (`summary.config.product`).
fn product() -> Value {
    DataObject::new("AboutInfo")
        .with("name", Value::str("VMware ESXi"))
        .with("fullName", Value::str("VMware ESXi 8.0.3 build-24022510"))
        .with("vendor", Value::str("VMware, Inc."))
        .with("version", Value::str("8.0.3"))
        .with("build", Value::str("24022510"))
        .with("localeVersion", Value::str("INTL"))
        .with("localeBuild", Value::str("000"))
        .with("osType", Value::str("vmnix-x86"))
        .with("productLineId", Value::str("embeddedEsx"))
        .with("apiType", Value::str("HostAgent"))
        .with("apiVersion", Value::str("8.0.3.0"))
        .with("licenseProductName", Value::str("VMware ESX Server"))
        .with("licenseProductVersion", Value::str("8.0"))
        .into_value()
}

fn green(label_kind: &str) -> Value {
    DataObject::new("ElementDescription")
        .with("label", Value::str("Green"))
        .with("summary", Value::str(label_kind))
        .with("key", Value::str("green"))
        .into_value()
}

fn runtime(w: &World) -> Value {
    DataObject::new("HostRuntimeInfo")
        .with(
            "connectionState",
            Value::Enum("HostSystemConnectionState", "connected".into()),
        )
        .with(
            "powerState",
            Value::Enum("HostSystemPowerState", "poweredOn".into()),
        )
        .with("standbyMode", Value::str("none"))
        .with("inMaintenanceMode", Value::Bool(false))
        .with("inQuarantineMode", Value::Bool(false))
        .opt("bootTime", w.started.map(Value::Time))
        .with(
            "healthSystemRuntime",
            DataObject::new("HealthSystemRuntime")
                .with(
                    "systemHealthInfo",
                    DataObject::new("HostSystemHealthInfo")
                        .with(
                            "numericSensorInfo",
                            Value::Array(
                                "HostNumericSensorInfo",
                                vec![
                                    DataObject::new("HostNumericSensorInfo")
                                        .with("name", Value::str("VMware Rollup Health State"))
                                        .typed(
                                            "healthState",
                                            green("Sensor is operating under normal conditions"),
                                        )
                                        .with("currentReading", Value::Long(0))
                                        .with("unitModifier", Value::Int(0))
                                        .with("baseUnits", Value::str(""))
                                        .with("sensorType", Value::str("system"))
                                        .into_value(),
                                ],
                            ),
                        )
                        .into_value(),
                )
                .with(
                    "hardwareStatusInfo",
                    DataObject::new("HostHardwareStatusInfo")
                        .with(
                            "cpuStatusInfo",
                            Value::Array(
                                "HostHardwareElementInfo",
                                (0..CPU_PACKAGES)
                                    .map(|i| {
                                        DataObject::new("HostHardwareElementInfo")
                                            .with("name", Value::str(format!("CPU socket #{i}")))
                                            .typed(
                                                "status",
                                                DataObject::new("ElementDescription")
                                                    .with("label", Value::str("Green"))
                                                    .with(
                                                        "summary",
                                                        Value::str(
                                                            "Physical element is functioning as expected",
                                                        ),
                                                    )
                                                    .with("key", Value::str("Green"))
                                                    .into_value(),
                                            )
                                            .into_value()
                                    })
                                    .collect(),
                            ),
                        )
                        .into_value(),
                )
                .into_value(),
        )
        // vSAN is not configured: an empty runtime.
        .with("vsanRuntimeInfo", DataObject::new("VsanHostRuntimeInfo").into_value())
        .with(
            "networkRuntimeInfo",
            DataObject::new("HostRuntimeInfoNetworkRuntimeInfo")
                .with(
                    "netStackInstanceRuntimeInfo",
                    Value::Array(
                        "HostRuntimeInfoNetStackInstanceRuntimeInfo",
                        vec![
                            DataObject::new("HostRuntimeInfoNetStackInstanceRuntimeInfo")
                                .with("netStackInstanceKey", Value::str("defaultTcpipStack"))
                                .with("state", Value::str("active"))
                                .with(
                                    "vmknicKeys",
                                    Value::Array("string", vec![Value::str("vmk0")]),
                                )
                                .with("maxNumberOfConnections", Value::Int(11000))
                                .with("currentIpV6Enabled", Value::Bool(true))
                                .into_value(),
                        ],
                    ),
                )
                .into_value(),
        )
        .with("hostMaxVirtualDiskCapacity", Value::Long(MAX_VIRTUAL_DISK))
        .with("cryptoState", Value::str("incapable"))
        .into_value()
}

/// `CPUID` leaves 0 and 1 of the modelled CPU, as ESXi formats registers.
fn cpu_features() -> Value {
    let leaf = |level: i32, regs: [&str; 4]| {
        DataObject::new("HostCpuIdInfo")
            .with("level", Value::Int(level))
            .with("eax", Value::str(regs[0]))
            .with("ebx", Value::str(regs[1]))
            .with("ecx", Value::str(regs[2]))
            .with("edx", Value::str(regs[3]))
            .into_value()
    };
    Value::Array(
        "HostCpuIdInfo",
        vec![
            // Highest leaf 0x1b, then "GenuineIntel" in ebx, edx, ecx.
            leaf(
                0,
                [
                    "0000:0000:0000:0000:0000:0000:0001:1011",
                    "0111:0101:0110:1110:0110:0101:0100:0111",
                    "0110:1100:0110:0101:0111:0100:0110:1110",
                    "0100:1001:0110:0101:0110:1110:0110:1001",
                ],
            ),
            // Family 6, model 0x6a (Ice Lake-SP), stepping 6.
            leaf(
                1,
                [
                    "0000:0000:0000:0000:0000:0110:1010:0110",
                    "0000:0000:0000:0000:0000:1000:0000:0000",
                    "1111:1110:1111:1010:0011:0010:0010:0011",
                    "0001:1111:1000:1011:1111:1011:1111:1111",
                ],
            ),
        ],
    )
}

fn pci_device(
    id: &str,
    class: i32,
    bus: i32,
    function: i32,
    vendor: &str,
    device: i32,
    name: &str,
) -> Value {
    DataObject::new("HostPciDevice")
        .with("id", Value::str(id))
        .with("classId", Value::Int(class))
        .with("bus", Value::Int(bus))
        .with("slot", Value::Int(0))
        .with("function", Value::Int(function))
        // 0x8086 (Intel), as the signed 16-bit number the API carries.
        .with("vendorId", Value::Int(-32634))
        .with("subVendorId", Value::Int(4136))
        .with("vendorName", Value::str(vendor))
        .with("deviceId", Value::Int(device))
        .with("subDeviceId", Value::Int(0))
        .with("parentBridge", Value::str("0000:30:02.0"))
        .with("deviceName", Value::str(name))
        .into_value()
}

fn hardware(w: &World, e: &Entity) -> Value {
    let (uuid, tag) = identity(w, e);
    let cores = CPU_PACKAGES * CORES_PER_PACKAGE;
    let threads_per_pkg = CORES_PER_PACKAGE * 2;
    let hz = i64::from(CPU_MHZ) * 1_000_000;
    let node_bytes = w.host_memory_bytes(&e.id) / i64::from(CPU_PACKAGES);
    let packages = (0..CPU_PACKAGES)
        .map(|i| {
            DataObject::new("HostCpuPackage")
                .with("index", Value::Int(i))
                .with("vendor", Value::str("intel"))
                .with("hz", Value::Long(hz))
                .with("busHz", Value::Long(100_000_000))
                .with("description", Value::str(CPU_MODEL))
                .with(
                    "threadId",
                    Value::Array(
                        "short",
                        (i * threads_per_pkg..(i + 1) * threads_per_pkg)
                            .map(Value::Int)
                            .collect(),
                    ),
                )
                .with("cpuFeature", cpu_features())
                .into_value()
        })
        .collect();
    let nodes = (0..CPU_PACKAGES)
        .map(|i| {
            DataObject::new("HostNumaNode")
                .with("typeId", Value::Int(i))
                .with(
                    "cpuID",
                    Value::Array(
                        "short",
                        (i * threads_per_pkg..(i + 1) * threads_per_pkg)
                            .map(Value::Int)
                            .collect(),
                    ),
                )
                .with("memoryRangeBegin", Value::Long(i64::from(i) * node_bytes))
                .with("memoryRangeLength", Value::Long(node_bytes))
                .into_value()
        })
        .collect();
    DataObject::new("HostHardwareInfo")
        .with(
            "systemInfo",
            DataObject::new("HostSystemInfo")
                .with("vendor", Value::str(VENDOR))
                .with("model", Value::str(MODEL))
                .with("uuid", Value::str(uuid))
                .with("otherIdentifyingInfo", other_identifying_info(&tag))
                .with("serialNumber", Value::str(tag))
                .into_value(),
        )
        .with(
            "cpuPowerManagementInfo",
            DataObject::new("HostCpuPowerManagementInfo")
                .with("currentPolicy", Value::str("Balanced"))
                .with(
                    "hardwareSupport",
                    Value::str("ACPI P-states, ACPI C-states"),
                )
                .into_value(),
        )
        .with(
            "cpuInfo",
            DataObject::new("HostCpuInfo")
                .with("numCpuPackages", Value::Int(CPU_PACKAGES))
                .with("numCpuCores", Value::Int(cores))
                .with("numCpuThreads", Value::Int(cores * 2))
                .with("hz", Value::Long(hz))
                .into_value(),
        )
        .with("cpuPkg", Value::Array("HostCpuPackage", packages))
        .with("memorySize", Value::Long(w.host_memory_bytes(&e.id)))
        .with(
            "numaInfo",
            DataObject::new("HostNumaInfo")
                .with("type", Value::str("NUMA"))
                .with("numNodes", Value::Int(CPU_PACKAGES))
                .with("numaNode", Value::Array("HostNumaNode", nodes))
                .into_value(),
        )
        .with("smcPresent", Value::Bool(false))
        .with(
            "pciDevice",
            Value::Array(
                "HostPciDevice",
                vec![
                    pci_device(
                        "0000:31:00.0",
                        512,
                        49,
                        0,
                        "Intel(R)",
                        5515,
                        "Ethernet Controller XXV710 for 25GbE SFP28",
                    ),
                    pci_device(
                        "0000:31:00.1",
                        512,
                        49,
                        1,
                        "Intel(R)",
                        5515,
                        "Ethernet Controller XXV710 for 25GbE SFP28",
                    ),
                ],
            ),
        )
        .with("cpuFeature", cpu_features())
        .with(
            "biosInfo",
            DataObject::new("HostBIOSInfo")
                .with("biosVersion", Value::str("1.10.2"))
                .with(
                    "releaseDate",
                    Value::Time(jiff::Timestamp::from_second(1_684_195_200).unwrap_or_default()),
                )
                .with("vendor", Value::str(VENDOR))
                .with("majorRelease", Value::Int(1))
                .with("minorRelease", Value::Int(10))
                .into_value(),
        )
        .with(
            "reliableMemoryInfo",
            DataObject::new("HostReliableMemoryInfo")
                .with("memorySize", Value::Long(0))
                .into_value(),
        )
        .into_value()
}
