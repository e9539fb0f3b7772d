//! Which VMware Tools a guest has (`config.tools`): open-vm-tools, or the MSI tools on Windows.
//! What the tools report from inside the guest is the guest model's (`guest_props`).

use super::world::Vm;

/// `guest.toolsVersion`: open-vm-tools 12.3.5 (`major << 10 | minor << 5 | patch`).
pub(super) const TOOLS_VERSION: i32 = (12 << 10) | (3 << 5) | 5;

/// How the guest's tools were installed.
pub(super) fn install_type(vm: &Vm) -> &'static str {
    if is_windows(vm) {
        "guestToolsTypeMSI"
    } else {
        "guestToolsTypeOpenVMTools"
    }
}

fn is_windows(vm: &Vm) -> bool {
    vm.guest_id.starts_with("windows")
}
