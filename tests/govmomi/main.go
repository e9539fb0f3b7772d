// Command govmomi-suite drives `labsync sim serve --tls` with VMware's Go SDK (govmomi, from
// Debian's golang-github-vmware-govmomi-dev) the way govc and other Go tools do: the finder, the
// SearchIndex, devices, instant clone, snapshots by name, power, rename, reconfigure, guest
// shutdown, reset and destroy. Each check prints "PASS name" or "FAIL name: why"; the exit code
// is 1 if any check failed or was skipped, 0 otherwise.
//
// Flags: -url URL (the server's https://…/sdk), -username U (default labsync), -thumbprint
// AB:CD:… (SHA-256 of the server certificate, as `labsync sim serve --tls` prints it) or
// -insecure, -run REGEXP (only matching checks; the others are skipped and fail the run).
// The password comes from env LABSYNC_SIM_PASSWORD (default labsync), never argv.
//
// The checks assume examples/sim-inventory.yaml and a server started for this run: they create
// and destroy VMs under /DC1/vm/labs.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The example inventory's names (examples/sim-inventory.yaml).
const (
	dcPath       = "/DC1"
	templates    = "/DC1/vm/templates"
	labsFolder   = "/DC1/vm/labs"
	sourcePath   = "/DC1/vm/templates/k8s-db"
	sourceHost   = "esx-01.lab.local"
	clusterPath  = "/DC1/host/Cluster1"
	labsPoolPath = "/DC1/host/Cluster1/Resources/labs"
	cloneA       = "govmomi-ic-a"
	cloneB       = "govmomi-ic-b"
)

var sourceVMs = []string{"k8s-cp", "k8s-db", "k8s-worker", "perf-node", "web-api", "web-frontend", "win-client"}

type suite struct {
	ctx    context.Context
	c      *govmomi.Client
	finder *find.Finder
	run    *regexp.Regexp
	failed []string
	passed int
	// Results later checks build on; nil when the check that makes them failed.
	dc     *object.Datacenter
	source *object.VirtualMachine
	labs   *object.Folder
	pool   *object.ResourcePool
	a, b   *object.VirtualMachine
}

// check runs one named check unless a check it needs failed (then it is skipped and counts as a
// failure: a skipped check has not passed).
func (s *suite) check(name string, needs []interface{}, f func() error) {
	if s.run != nil && !s.run.MatchString(name) {
		return
	}
	for _, n := range needs {
		if n == nil || reflect.ValueOf(n).IsNil() {
			fmt.Printf("FAIL %s: skipped, an earlier check it needs failed\n", name)
			s.failed = append(s.failed, name)
			return
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, 60*time.Second)
	defer cancel()
	prev := s.ctx
	s.ctx = ctx
	err := f()
	s.ctx = prev
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		s.failed = append(s.failed, name)
		return
	}
	s.passed++
	fmt.Printf("PASS %s (%d ms)\n", name, time.Since(start).Milliseconds())
}

// faultOf extracts the vim25 fault from an error: a SOAP fault's detail, a task's
// LocalizedMethodFault, or a vim fault. Nil when the error carries none.
func faultOf(err error) interface{} {
	var te task.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return te.Fault()
	case soap.IsSoapFault(err):
		return soap.ToSoapFault(err).VimFault()
	case soap.IsVimFault(err):
		return soap.ToVimFault(err)
	}
	return nil
}

// faultName is the fault's vim25 type name ("InvalidPowerState"), or "" for none.
func faultName(f interface{}) string {
	if f == nil {
		return ""
	}
	t := reflect.TypeOf(f)
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	return t.Name()
}

// expectFault checks that err carries a fault of type want, and returns it (dereferenced).
func expectFault(err error, want string) (interface{}, error) {
	if err == nil {
		return nil, fmt.Errorf("succeeded, want fault %s", want)
	}
	f := faultOf(err)
	if got := faultName(f); got != want {
		return nil, fmt.Errorf("fault %q (%v), want %s", got, err, want)
	}
	v := reflect.ValueOf(f)
	for v.Kind() == reflect.Ptr {
		v = v.Elem()
	}
	return v.Interface(), nil
}

// powerFault checks an InvalidPowerState fault's two states.
func powerFault(err error, requested, existing types.VirtualMachinePowerState) error {
	f, e := expectFault(err, "InvalidPowerState")
	if e != nil {
		return e
	}
	ips := f.(types.InvalidPowerState)
	if ips.RequestedState != requested || ips.ExistingState != existing {
		return fmt.Errorf("InvalidPowerState {requested %q, existing %q}, want {%q, %q}",
			ips.RequestedState, ips.ExistingState, requested, existing)
	}
	return nil
}

func (s *suite) wait(t *object.Task, err error) (types.AnyType, error) {
	if err != nil {
		return nil, err
	}
	info, err := t.WaitForResult(s.ctx, nil)
	if err != nil {
		return nil, err
	}
	return info.Result, nil
}

func (s *suite) vmProps(vm *object.VirtualMachine, props ...string) (mo.VirtualMachine, error) {
	var o mo.VirtualMachine
	err := vm.Properties(s.ctx, vm.Reference(), props, &o)
	return o, err
}

func (s *suite) power(vm *object.VirtualMachine) (types.VirtualMachinePowerState, error) {
	o, err := s.vmProps(vm, "runtime.powerState")
	return o.Runtime.PowerState, err
}

func sameRef(got object.Reference, want types.ManagedObjectReference) error {
	if got == nil {
		return fmt.Errorf("found nothing, want %s", want)
	}
	if got.Reference() != want {
		return fmt.Errorf("found %s, want %s", got.Reference(), want)
	}
	return nil
}

// pinnedTLS verifies the server's leaf certificate against a SHA-256 thumbprint (govmomi's own
// thumbprints are SHA-1; labsync prints SHA-256).
func pinnedTLS(c *soap.Client, thumbprint string) {
	want := strings.ToUpper(strings.ReplaceAll(thumbprint, ":", ""))
	cfg := c.DefaultTransport().TLSClientConfig
	cfg.InsecureSkipVerify = true // replaced by the pin below
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no server certificate")
		}
		sum := sha256.Sum256(raw[0])
		if got := fmt.Sprintf("%X", sum[:]); got != want {
			return fmt.Errorf("server certificate SHA-256 %s does not match the pinned %s", got, want)
		}
		return nil
	}
}

func connect(ctx context.Context, u *url.URL, user, password, thumbprint string) (*govmomi.Client, error) {
	sc := soap.NewClient(u, true)
	if thumbprint != "" {
		pinnedTLS(sc, thumbprint)
	}
	// What govmomi.NewClient does, with our transport (and its pin) from the first call on.
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, url.UserPassword(user, password)); err != nil {
		return nil, err
	}
	return c, nil
}

func main() {
	rawURL := flag.String("url", "", "the server's SDK URL (https://127.0.0.1:PORT/sdk)")
	user := flag.String("username", "labsync", "user name")
	thumbprint := flag.String("thumbprint", "", "SHA-256 thumbprint of the server certificate (AB:CD:…)")
	insecure := flag.Bool("insecure", false, "accept any server certificate")
	only := flag.String("run", "", "only run the checks matching this regular expression")
	flag.Parse()
	password := os.Getenv("LABSYNC_SIM_PASSWORD")
	if password == "" {
		password = "labsync"
	}
	u, err := url.Parse(*rawURL)
	if *rawURL == "" || err != nil {
		fmt.Fprintln(os.Stderr, "govmomi-suite: -url https://HOST:PORT/sdk is required")
		os.Exit(2)
	}
	if u.Scheme == "https" && *thumbprint == "" && !*insecure {
		fmt.Fprintln(os.Stderr, "govmomi-suite: give -thumbprint (SHA-256) or -insecure for https")
		os.Exit(2)
	}
	s := &suite{ctx: context.Background()}
	if *only != "" {
		s.run = regexp.MustCompile(*only)
	}
	start := time.Now()
	s.all(u, *user, password, *thumbprint)
	fmt.Printf("%d passed, %d failed in %.1f s\n", s.passed, len(s.failed), time.Since(start).Seconds())
	if len(s.failed) > 0 {
		fmt.Printf("failed: %s\n", strings.Join(s.failed, " "))
		os.Exit(1)
	}
}

func (s *suite) all(u *url.URL, user, password, thumbprint string) {
	s.check("connect", nil, func() error {
		c, err := connect(s.ctx, u, user, password, thumbprint)
		if err != nil {
			return err
		}
		about := c.ServiceContent.About
		if about.ApiType != "VirtualCenter" {
			return fmt.Errorf("apiType %q, want VirtualCenter", about.ApiType)
		}
		s.c = c
		s.finder = find.NewFinder(c.Client, true)
		return nil
	})
	if thumbprint != "" {
		s.check("wrong_thumbprint_is_refused", nil, func() error {
			wrong := strings.Repeat("00:", 31) + "00"
			_, err := connect(s.ctx, u, user, password, wrong)
			if err == nil {
				return errors.New("connected with a wrong pin")
			}
			if !strings.Contains(err.Error(), "does not match the pinned") {
				return fmt.Errorf("unexpected error: %v", err)
			}
			return nil
		})
	}
	s.check("wrong_password_is_invalid_login", []interface{}{s.c}, func() error {
		_, err := connect(s.ctx, u, user, password+"-wrong", thumbprint)
		_, e := expectFault(err, "InvalidLogin")
		return e
	})
	s.inventory()
	s.search()
	s.instantClone()
	s.snapshots()
	s.powerAndGuest()
	s.renameAndReconfigure()
	s.destroy()
	if s.c != nil {
		_ = s.c.Logout(context.Background())
	}
}

func (s *suite) inventory() {
	s.check("finder_datacenter", []interface{}{s.finder}, func() error {
		dc, err := s.finder.Datacenter(s.ctx, "DC1")
		if err != nil {
			return err
		}
		if dc.InventoryPath != dcPath {
			return fmt.Errorf("inventory path %q, want %q", dc.InventoryPath, dcPath)
		}
		def, err := s.finder.DefaultDatacenter(s.ctx)
		if err != nil {
			return fmt.Errorf("default datacenter: %v", err)
		}
		if def.Reference() != dc.Reference() {
			return fmt.Errorf("default datacenter %s, want %s", def.Reference(), dc.Reference())
		}
		s.finder.SetDatacenter(dc)
		s.dc = dc
		return nil
	})
	s.check("finder_vm_by_inventory_path", []interface{}{s.dc}, func() error {
		vm, err := s.finder.VirtualMachine(s.ctx, sourcePath)
		if err != nil {
			return err
		}
		if vm.Name() != "k8s-db" || vm.InventoryPath != sourcePath {
			return fmt.Errorf("found %q at %q", vm.Name(), vm.InventoryPath)
		}
		// Relative to the datacenter's vm folder, as govc resolves bare names.
		rel, err := s.finder.VirtualMachine(s.ctx, "k8s-db")
		if err != nil {
			return fmt.Errorf("by name: %v", err)
		}
		if rel.Reference() != vm.Reference() {
			return fmt.Errorf("by name %s, by path %s", rel.Reference(), vm.Reference())
		}
		if _, err := s.finder.VirtualMachine(s.ctx, templates+"/no-such-vm"); err == nil {
			return errors.New("a missing VM was found")
		} else if _, ok := err.(*find.NotFoundError); !ok {
			return fmt.Errorf("missing VM: %T %v, want find.NotFoundError", err, err)
		}
		s.source = vm
		return nil
	})
	s.check("finder_vm_list_by_glob", []interface{}{s.dc}, func() error {
		vms, err := s.finder.VirtualMachineList(s.ctx, templates+"/*")
		if err != nil {
			return err
		}
		var names []string
		for _, vm := range vms {
			names = append(names, vm.Name())
			if !strings.HasPrefix(vm.InventoryPath, templates+"/") {
				return fmt.Errorf("%s at %q", vm.Name(), vm.InventoryPath)
			}
		}
		sort.Strings(names)
		if !reflect.DeepEqual(names, sourceVMs) {
			return fmt.Errorf("found %v, want %v", names, sourceVMs)
		}
		k8s, err := s.finder.VirtualMachineList(s.ctx, templates+"/k8s-*")
		if err != nil {
			return err
		}
		if len(k8s) != 3 {
			return fmt.Errorf("k8s-* matched %d VMs, want 3", len(k8s))
		}
		return nil
	})
	s.check("finder_folder", []interface{}{s.dc}, func() error {
		f, err := s.finder.Folder(s.ctx, labsFolder)
		if err != nil {
			return err
		}
		s.labs = f
		return nil
	})
	s.check("finder_host_system", []interface{}{s.dc, s.source}, func() error {
		hosts, err := s.finder.HostSystemList(s.ctx, clusterPath+"/*")
		if err != nil {
			return err
		}
		if len(hosts) != 3 {
			return fmt.Errorf("%d hosts in %s, want 3", len(hosts), clusterPath)
		}
		h, err := s.finder.HostSystem(s.ctx, clusterPath+"/"+sourceHost)
		if err != nil {
			return err
		}
		vmHost, err := s.source.HostSystem(s.ctx)
		if err != nil {
			return fmt.Errorf("vm.HostSystem: %v", err)
		}
		if vmHost.Reference() != h.Reference() {
			return fmt.Errorf("k8s-db runs on %s, want %s (%s)", vmHost.Reference(), h.Reference(), sourceHost)
		}
		name, err := vmHost.ObjectName(s.ctx)
		if err != nil || name != sourceHost {
			return fmt.Errorf("host name %q (%v), want %q", name, err, sourceHost)
		}
		return nil
	})
	s.check("finder_resource_pool", []interface{}{s.dc, s.source}, func() error {
		p, err := s.finder.ResourcePool(s.ctx, labsPoolPath)
		if err != nil {
			return err
		}
		root, err := s.finder.ResourcePool(s.ctx, clusterPath+"/Resources")
		if err != nil {
			return fmt.Errorf("root pool: %v", err)
		}
		// The example's sources name no pool: they sit in the cluster's root pool.
		vmPool, err := s.source.ResourcePool(s.ctx)
		if err != nil {
			return fmt.Errorf("vm.ResourcePool: %v", err)
		}
		if vmPool.Reference() != root.Reference() {
			return fmt.Errorf("k8s-db is in pool %s, want the root pool %s", vmPool.Reference(), root.Reference())
		}
		var o mo.ResourcePool
		if err := p.Properties(s.ctx, p.Reference(), []string{"parent", "owner"}, &o); err != nil {
			return err
		}
		if o.Parent == nil || *o.Parent != root.Reference() {
			return fmt.Errorf("labs pool's parent %v, want %s", o.Parent, root.Reference())
		}
		s.pool = p
		return nil
	})
	s.check("finder_datastore_and_network", []interface{}{s.dc, s.source}, func() error {
		dss, err := s.finder.DatastoreList(s.ctx, "*")
		if err != nil {
			return err
		}
		if len(dss) != 2 {
			return fmt.Errorf("%d datastores, want 2", len(dss))
		}
		ds, err := s.finder.Datastore(s.ctx, "ds-ssd-01")
		if err != nil {
			return err
		}
		o, err := s.vmProps(s.source, "datastore", "network")
		if err != nil {
			return err
		}
		if len(o.Datastore) != 1 || o.Datastore[0] != ds.Reference() {
			return fmt.Errorf("k8s-db datastores %v, want [%s]", o.Datastore, ds.Reference())
		}
		net, err := s.finder.Network(s.ctx, "lab-net")
		if err != nil {
			return err
		}
		if len(o.Network) != 1 || o.Network[0] != net.Reference() {
			return fmt.Errorf("k8s-db networks %v, want [%s]", o.Network, net.Reference())
		}
		return nil
	})
	s.check("vm_devices", []interface{}{s.source}, func() error {
		devices, err := s.source.Device(s.ctx)
		if err != nil {
			return err
		}
		disks := devices.SelectByType((*types.VirtualDisk)(nil))
		if len(disks) != 1 {
			return fmt.Errorf("%d disks, want 1", len(disks))
		}
		nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
		if len(nics) != 1 {
			return fmt.Errorf("%d NICs, want 1", len(nics))
		}
		card := nics[0].(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		if !strings.HasPrefix(card.MacAddress, "00:50:56:") {
			return fmt.Errorf("MAC %q, want 00:50:56:…", card.MacAddress)
		}
		if name := devices.Name(disks[0]); name != "disk-1000-0" {
			return fmt.Errorf("disk device name %q, want disk-1000-0", name)
		}
		backing, ok := disks[0].GetVirtualDevice().Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok || !strings.HasPrefix(backing.FileName, "[ds-ssd-01] k8s-db/") {
			return fmt.Errorf("disk backing %#v", disks[0].GetVirtualDevice().Backing)
		}
		return nil
	})
}

func (s *suite) search() {
	s.check("search_index_find_by_inventory_path", []interface{}{s.source}, func() error {
		si := object.NewSearchIndex(s.c.Client)
		for _, p := range []string{sourcePath, "DC1/vm/templates/k8s-db/", "//DC1/vm/templates/k8s-db"} {
			found, err := si.FindByInventoryPath(s.ctx, p)
			if err != nil {
				return fmt.Errorf("%q: %v", p, err)
			}
			if err := sameRef(found, s.source.Reference()); err != nil {
				return fmt.Errorf("%q: %v", p, err)
			}
		}
		if _, ok := mustFind(si.FindByInventoryPath(s.ctx, sourcePath)).(*object.VirtualMachine); !ok {
			return errors.New("the result is not an object.VirtualMachine")
		}
		pool, err := si.FindByInventoryPath(s.ctx, labsPoolPath)
		if err != nil || pool == nil || pool.Reference().Type != "ResourcePool" {
			return fmt.Errorf("%s: %v %v", labsPoolPath, pool, err)
		}
		host, err := si.FindByInventoryPath(s.ctx, clusterPath+"/"+sourceHost)
		if err != nil || host == nil || host.Reference().Type != "HostSystem" {
			return fmt.Errorf("host: %v %v", host, err)
		}
		ds, err := si.FindByInventoryPath(s.ctx, "/DC1/datastore/ds-nfs-01")
		if err != nil || ds == nil || ds.Reference().Type != "Datastore" {
			return fmt.Errorf("datastore: %v %v", ds, err)
		}
		for _, p := range []string{templates + "/no-such-vm", "/DC2", "/DC1/vm/templates/k8s-db/deeper"} {
			missing, err := si.FindByInventoryPath(s.ctx, p)
			if err != nil {
				return fmt.Errorf("%q: %v", p, err)
			}
			if missing != nil {
				return fmt.Errorf("%q found %s, want nothing", p, missing.Reference())
			}
		}
		return nil
	})
	s.check("search_index_find_child", []interface{}{s.source, s.dc}, func() error {
		si := object.NewSearchIndex(s.c.Client)
		folders, err := s.dc.Folders(s.ctx)
		if err != nil {
			return err
		}
		vmFolder, err := si.FindChild(s.ctx, s.dc, "vm")
		if err != nil {
			return err
		}
		if err := sameRef(vmFolder, folders.VmFolder.Reference()); err != nil {
			return fmt.Errorf("datacenter's vm: %v", err)
		}
		tpl, err := si.FindChild(s.ctx, vmFolder, "templates")
		if err != nil || tpl == nil {
			return fmt.Errorf("templates: %v %v", tpl, err)
		}
		vm, err := si.FindChild(s.ctx, tpl, "k8s-db")
		if err != nil {
			return err
		}
		if err := sameRef(vm, s.source.Reference()); err != nil {
			return fmt.Errorf("templates' k8s-db: %v", err)
		}
		cluster, err := si.FindByInventoryPath(s.ctx, clusterPath)
		if err != nil || cluster == nil {
			return fmt.Errorf("cluster: %v %v", cluster, err)
		}
		root, err := si.FindChild(s.ctx, cluster, "Resources")
		if err != nil || root == nil || root.Reference().Type != "ResourcePool" {
			return fmt.Errorf("cluster's Resources: %v %v", root, err)
		}
		host, err := si.FindChild(s.ctx, cluster, sourceHost)
		if err != nil || host == nil || host.Reference().Type != "HostSystem" {
			return fmt.Errorf("cluster's host: %v %v", host, err)
		}
		labs, err := si.FindChild(s.ctx, root, "labs")
		if err != nil || labs == nil || labs.Reference().Type != "ResourcePool" {
			return fmt.Errorf("root pool's labs: %v %v", labs, err)
		}
		// A resource pool's children are its pools and its VMs (k8s-db sits in the root pool).
		inPool, err := si.FindChild(s.ctx, root, "k8s-db")
		if err != nil {
			return err
		}
		if err := sameRef(inPool, s.source.Reference()); err != nil {
			return fmt.Errorf("root pool's k8s-db: %v", err)
		}
		if none, err := si.FindChild(s.ctx, labs, "k8s-db"); err != nil || none != nil {
			return fmt.Errorf("labs pool's k8s-db: %v %v, want nothing", none, err)
		}
		// Only immediate children: k8s-db is not a child of the vm folder.
		deep, err := si.FindChild(s.ctx, vmFolder, "k8s-db")
		if err != nil || deep != nil {
			return fmt.Errorf("vm folder's k8s-db: %v %v, want nothing", deep, err)
		}
		gone := object.NewFolder(s.c.Client, types.ManagedObjectReference{Type: "Folder", Value: "group-v999999"})
		_, err = si.FindChild(s.ctx, gone, "x")
		f, e := expectFault(err, "ManagedObjectNotFound")
		if e != nil {
			return fmt.Errorf("missing entity: %v", e)
		}
		if obj := f.(types.ManagedObjectNotFound).Obj; obj != gone.Reference() {
			return fmt.Errorf("ManagedObjectNotFound.obj %s, want %s", obj, gone.Reference())
		}
		return nil
	})
	s.check("search_index_find_by_uuid", []interface{}{s.source, s.dc}, func() error {
		o, err := s.vmProps(s.source, "config.uuid", "config.instanceUuid")
		if err != nil {
			return err
		}
		si := object.NewSearchIndex(s.c.Client)
		found, err := si.FindByUuid(s.ctx, s.dc, o.Config.Uuid, true, nil)
		if err != nil {
			return err
		}
		if err := sameRef(found, s.source.Reference()); err != nil {
			return fmt.Errorf("BIOS UUID: %v", err)
		}
		yes := true
		found, err = si.FindByUuid(s.ctx, nil, o.Config.InstanceUuid, true, &yes)
		if err != nil {
			return err
		}
		if err := sameRef(found, s.source.Reference()); err != nil {
			return fmt.Errorf("instance UUID: %v", err)
		}
		none, err := si.FindByUuid(s.ctx, s.dc, "00000000-0000-0000-0000-000000000000", true, nil)
		if err != nil || none != nil {
			return fmt.Errorf("unknown UUID: %v %v, want nothing", none, err)
		}
		return nil
	})
}

func mustFind(r object.Reference, err error) object.Reference {
	if err != nil {
		return nil
	}
	return r
}

func (s *suite) instantCloneSpec(name string) types.VirtualMachineInstantCloneSpec {
	folder := s.labs.Reference()
	pool := s.pool.Reference()
	return types.VirtualMachineInstantCloneSpec{
		Name:     name,
		Location: types.VirtualMachineRelocateSpec{Folder: &folder, Pool: &pool},
		Config: []types.BaseOptionValue{
			&types.OptionValue{Key: "guestinfo.lab", Value: "govmomi"},
		},
	}
}

func (s *suite) instantClone() {
	s.check("instant_clone", []interface{}{s.source, s.labs, s.pool}, func() error {
		for _, name := range []string{cloneA, cloneB} {
			res, err := s.wait(s.source.InstantClone(s.ctx, s.instantCloneSpec(name)))
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			ref, ok := res.(types.ManagedObjectReference)
			if !ok {
				return fmt.Errorf("%s: task result %#v", name, res)
			}
			vm := object.NewVirtualMachine(s.c.Client, ref)
			o, err := s.vmProps(vm, "name", "parent", "resourcePool", "runtime.powerState", "runtime.host", "config.extraConfig")
			if err != nil {
				return err
			}
			if o.Name != name || o.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
				return fmt.Errorf("%s: name %q power %q", name, o.Name, o.Runtime.PowerState)
			}
			if o.Parent == nil || *o.Parent != s.labs.Reference() || o.ResourcePool == nil || *o.ResourcePool != s.pool.Reference() {
				return fmt.Errorf("%s: parent %v pool %v", name, o.Parent, o.ResourcePool)
			}
			if v := extra(o, "guestinfo.lab"); v != "govmomi" {
				return fmt.Errorf("%s: guestinfo.lab = %q", name, v)
			}
			found, err := s.finder.VirtualMachine(s.ctx, labsFolder+"/"+name)
			if err != nil {
				return fmt.Errorf("finder after clone: %v", err)
			}
			if name == cloneA {
				s.a = found
			} else {
				s.b = found
			}
		}
		_, err := s.wait(s.source.InstantClone(s.ctx, s.instantCloneSpec(cloneA)))
		_, e := expectFault(err, "DuplicateName")
		if e != nil {
			return fmt.Errorf("second clone named %s: %v", cloneA, e)
		}
		return nil
	})
}

func extra(o mo.VirtualMachine, key string) string {
	if o.Config == nil {
		return ""
	}
	for _, ov := range o.Config.ExtraConfig {
		v := ov.GetOptionValue()
		if v.Key == key {
			return fmt.Sprint(v.Value)
		}
	}
	return ""
}

func hasExtra(o mo.VirtualMachine, key string) bool {
	if o.Config == nil {
		return false
	}
	for _, ov := range o.Config.ExtraConfig {
		if ov.GetOptionValue().Key == key {
			return true
		}
	}
	return false
}

func (s *suite) currentSnapshot(vm *object.VirtualMachine) (*types.ManagedObjectReference, error) {
	o, err := s.vmProps(vm, "snapshot")
	if err != nil || o.Snapshot == nil {
		return nil, err
	}
	return o.Snapshot.CurrentSnapshot, nil
}

func (s *suite) snapshots() {
	s.check("snapshot_create_and_find_by_name", []interface{}{s.a}, func() error {
		for _, name := range []string{"before", "after"} {
			if _, err := s.wait(s.a.CreateSnapshot(s.ctx, name, "govmomi suite", false, false)); err != nil {
				return fmt.Errorf("create %s: %v", name, err)
			}
		}
		_, err := s.a.FindSnapshot(s.ctx, "before")
		if err != nil {
			return err
		}
		after, err := s.a.FindSnapshot(s.ctx, "after")
		if err != nil {
			return err
		}
		// A tree path finds the child too, as govc's snapshot names do.
		byPath, err := s.a.FindSnapshot(s.ctx, "before/after")
		if err != nil {
			return err
		}
		if *byPath != *after {
			return fmt.Errorf("before/after is %s, after is %s", byPath, after)
		}
		cur, err := s.currentSnapshot(s.a)
		if err != nil || cur == nil || *cur != *after {
			return fmt.Errorf("current snapshot %v (%v), want %s", cur, err, after)
		}
		if _, err := s.a.FindSnapshot(s.ctx, "nope"); err == nil {
			return errors.New("found a snapshot that does not exist")
		}
		return nil
	})
	s.check("snapshot_revert_by_name", []interface{}{s.a}, func() error {
		// A setting made after "before" is undone by reverting to it.
		spec := types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: "guestinfo.after-before", Value: "yes"},
		}}
		if _, err := s.wait(s.a.Reconfigure(s.ctx, spec)); err != nil {
			return fmt.Errorf("reconfigure: %v", err)
		}
		before, err := s.a.FindSnapshot(s.ctx, "before")
		if err != nil {
			return err
		}
		if _, err := s.wait(s.a.RevertToSnapshot(s.ctx, "before", false)); err != nil {
			return err
		}
		cur, err := s.currentSnapshot(s.a)
		if err != nil || cur == nil || *cur != *before {
			return fmt.Errorf("current snapshot %v (%v), want %s", cur, err, before)
		}
		o, err := s.vmProps(s.a, "config.extraConfig", "runtime.powerState")
		if err != nil {
			return err
		}
		if hasExtra(o, "guestinfo.after-before") {
			return errors.New("guestinfo.after-before survived the revert")
		}
		if extra(o, "guestinfo.lab") != "govmomi" {
			return errors.New("guestinfo.lab lost by the revert")
		}
		// "before" was taken powered on, so the VM runs again.
		if o.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			return fmt.Errorf("power %q after revert, want poweredOn", o.Runtime.PowerState)
		}
		if _, err := s.a.FindSnapshot(s.ctx, "after"); err != nil {
			return fmt.Errorf("the later snapshot is gone after a revert: %v", err)
		}
		// suppressPowerOn leaves the VM off.
		if _, err := s.wait(s.a.RevertToSnapshot(s.ctx, "after", true)); err != nil {
			return fmt.Errorf("revert suppressPowerOn: %v", err)
		}
		if p, err := s.power(s.a); err != nil || p != types.VirtualMachinePowerStatePoweredOff {
			return fmt.Errorf("power %q (%v) after revert with suppressPowerOn, want poweredOff", p, err)
		}
		if _, err := s.wait(s.a.PowerOn(s.ctx)); err != nil {
			return fmt.Errorf("power on: %v", err)
		}
		return nil
	})
	s.check("snapshot_remove_by_name", []interface{}{s.a}, func() error {
		// What `govc snapshot.remove after` does: FindSnapshot, then RemoveSnapshot_Task.
		consolidate := true
		if _, err := s.wait(s.a.RemoveSnapshot(s.ctx, "after", false, &consolidate)); err != nil {
			return err
		}
		if _, err := s.a.FindSnapshot(s.ctx, "after"); err == nil {
			return errors.New("the removed snapshot is still found")
		}
		if _, err := s.a.FindSnapshot(s.ctx, "before"); err != nil {
			return fmt.Errorf("the other snapshot went too: %v", err)
		}
		if _, err := s.wait(s.a.RemoveSnapshot(s.ctx, "before", true, nil)); err != nil {
			return fmt.Errorf("remove before: %v", err)
		}
		if o, err := s.vmProps(s.a, "snapshot"); err != nil || o.Snapshot != nil {
			return fmt.Errorf("snapshot tree %v (%v) after removing all, want none", o.Snapshot, err)
		}
		if _, err := s.wait(s.a.RevertToCurrentSnapshot(s.ctx, true)); err == nil {
			return errors.New("revert to current snapshot without snapshots succeeded")
		} else if _, e := expectFault(err, "NotFound"); e != nil {
			return fmt.Errorf("revert without snapshots: %v", e)
		}
		return nil
	})
}

func (s *suite) powerAndGuest() {
	s.check("power_off_and_on", []interface{}{s.b}, func() error {
		if _, err := s.wait(s.b.PowerOff(s.ctx)); err != nil {
			return err
		}
		_, err := s.wait(s.b.PowerOff(s.ctx))
		if e := powerFault(err, types.VirtualMachinePowerStatePoweredOff, types.VirtualMachinePowerStatePoweredOff); e != nil {
			return fmt.Errorf("second power off: %v", e)
		}
		if _, err := s.wait(s.b.PowerOn(s.ctx)); err != nil {
			return err
		}
		_, err = s.wait(s.b.PowerOn(s.ctx))
		if e := powerFault(err, types.VirtualMachinePowerStatePoweredOn, types.VirtualMachinePowerStatePoweredOn); e != nil {
			return fmt.Errorf("second power on: %v", e)
		}
		return s.b.WaitForPowerState(s.ctx, types.VirtualMachinePowerStatePoweredOn)
	})
	s.check("shutdown_guest", []interface{}{s.b}, func() error {
		if err := s.b.ShutdownGuest(s.ctx); err != nil {
			return err
		}
		if err := s.b.WaitForPowerState(s.ctx, types.VirtualMachinePowerStatePoweredOff); err != nil {
			return err
		}
		err := s.b.ShutdownGuest(s.ctx)
		if e := powerFault(err, types.VirtualMachinePowerStatePoweredOn, types.VirtualMachinePowerStatePoweredOff); e != nil {
			return fmt.Errorf("shutdown of a powered-off VM: %v", e)
		}
		return nil
	})
	s.check("reset", []interface{}{s.b}, func() error {
		_, err := s.wait(s.b.Reset(s.ctx))
		if e := powerFault(err, types.VirtualMachinePowerStatePoweredOn, types.VirtualMachinePowerStatePoweredOff); e != nil {
			return fmt.Errorf("reset of a powered-off VM: %v", e)
		}
		if _, err := s.wait(s.b.PowerOn(s.ctx)); err != nil {
			return err
		}
		o, err := s.vmProps(s.b, "runtime.bootTime")
		if err != nil || o.Runtime.BootTime == nil {
			return fmt.Errorf("bootTime %v (%v)", o.Runtime.BootTime, err)
		}
		booted := *o.Runtime.BootTime
		time.Sleep(20 * time.Millisecond)
		if _, err := s.wait(s.b.Reset(s.ctx)); err != nil {
			return err
		}
		o, err = s.vmProps(s.b, "runtime.powerState", "runtime.bootTime")
		if err != nil {
			return err
		}
		if o.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			return fmt.Errorf("power %q after reset", o.Runtime.PowerState)
		}
		if o.Runtime.BootTime == nil || !o.Runtime.BootTime.After(booted) {
			return fmt.Errorf("bootTime %v after reset, was %v", o.Runtime.BootTime, booted)
		}
		return nil
	})
}

func (s *suite) renameAndReconfigure() {
	s.check("rename", []interface{}{s.a, s.b}, func() error {
		renamed := cloneA + "-renamed"
		if _, err := s.wait(s.a.Rename(s.ctx, renamed)); err != nil {
			return err
		}
		name, err := s.a.ObjectName(s.ctx)
		if err != nil || name != renamed {
			return fmt.Errorf("name %q (%v), want %q", name, err, renamed)
		}
		if _, err := s.finder.VirtualMachine(s.ctx, labsFolder+"/"+renamed); err != nil {
			return fmt.Errorf("finder by the new name: %v", err)
		}
		o, err := s.vmProps(s.a, "config.name", "summary.config.name")
		if err != nil || o.Config.Name != renamed || o.Summary.Config.Name != renamed {
			return fmt.Errorf("config.name %q summary.config.name %q (%v)", o.Config.Name, o.Summary.Config.Name, err)
		}
		_, err = s.wait(s.a.Rename(s.ctx, cloneB))
		f, e := expectFault(err, "DuplicateName")
		if e != nil {
			return fmt.Errorf("rename onto a sibling's name: %v", e)
		}
		if dn := f.(types.DuplicateName); dn.Name != cloneB {
			return fmt.Errorf("DuplicateName.name %q, want %q", dn.Name, cloneB)
		}
		_, err = s.wait(s.a.Rename(s.ctx, ""))
		if _, e := expectFault(err, "InvalidName"); e != nil {
			return fmt.Errorf("empty name: %v", e)
		}
		s.a.InventoryPath = labsFolder + "/" + renamed
		return nil
	})
	s.check("reconfigure_extra_config_and_annotation", []interface{}{s.a}, func() error {
		before, err := s.vmProps(s.a, "config.changeVersion")
		if err != nil {
			return err
		}
		spec := types.VirtualMachineConfigSpec{
			Annotation: "made by the govmomi suite",
			ExtraConfig: []types.BaseOptionValue{
				&types.OptionValue{Key: "guestinfo.hostname", Value: "lab-a"},
				&types.OptionValue{Key: "guestinfo.lab", Value: "govmomi-2"},
			},
		}
		if _, err := s.wait(s.a.Reconfigure(s.ctx, spec)); err != nil {
			return err
		}
		o, err := s.vmProps(s.a, "config.extraConfig", "config.annotation", "config.changeVersion")
		if err != nil {
			return err
		}
		if v := extra(o, "guestinfo.hostname"); v != "lab-a" {
			return fmt.Errorf("guestinfo.hostname = %q", v)
		}
		if v := extra(o, "guestinfo.lab"); v != "govmomi-2" {
			return fmt.Errorf("guestinfo.lab = %q, want it replaced", v)
		}
		n := 0
		for _, ov := range o.Config.ExtraConfig {
			if ov.GetOptionValue().Key == "guestinfo.lab" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("guestinfo.lab appears %d times", n)
		}
		if o.Config.Annotation != spec.Annotation {
			return fmt.Errorf("annotation %q", o.Config.Annotation)
		}
		if o.Config.ChangeVersion == before.Config.ChangeVersion {
			return errors.New("changeVersion did not change")
		}
		// An empty value removes the key.
		del := types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: "guestinfo.hostname", Value: ""},
		}}
		if _, err := s.wait(s.a.Reconfigure(s.ctx, del)); err != nil {
			return err
		}
		o2, err := s.vmProps(s.a, "config.extraConfig", "config.annotation")
		if err != nil {
			return err
		}
		if hasExtra(o2, "guestinfo.hostname") {
			return errors.New("guestinfo.hostname still there after setting it empty")
		}
		if o2.Config.Annotation != spec.Annotation {
			return errors.New("annotation lost by a spec without one")
		}
		// A stale changeVersion is refused.
		stale := types.VirtualMachineConfigSpec{ChangeVersion: before.Config.ChangeVersion, Annotation: "stale"}
		_, err = s.wait(s.a.Reconfigure(s.ctx, stale))
		if _, e := expectFault(err, "ConcurrentAccess"); e != nil {
			return fmt.Errorf("stale changeVersion: %v", e)
		}
		return nil
	})
}

func (s *suite) destroy() {
	s.check("destroy", []interface{}{s.a, s.b}, func() error {
		_, err := s.wait(s.a.Destroy(s.ctx))
		if e := powerFault(err, types.VirtualMachinePowerStatePoweredOff, types.VirtualMachinePowerStatePoweredOn); e != nil {
			return fmt.Errorf("destroy while powered on: %v", e)
		}
		si := object.NewSearchIndex(s.c.Client)
		for _, vm := range []*object.VirtualMachine{s.a, s.b} {
			if p, err := s.power(vm); err != nil {
				return err
			} else if p == types.VirtualMachinePowerStatePoweredOn {
				if _, err := s.wait(vm.PowerOff(s.ctx)); err != nil {
					return err
				}
			}
			if _, err := s.wait(vm.Destroy(s.ctx)); err != nil {
				return err
			}
			gone, err := si.FindByInventoryPath(s.ctx, vm.InventoryPath)
			if err != nil || gone != nil {
				return fmt.Errorf("%s after destroy: %v %v", vm.InventoryPath, gone, err)
			}
		}
		_, err = s.a.Destroy(s.ctx)
		f, e := expectFault(err, "ManagedObjectNotFound")
		if e != nil {
			return fmt.Errorf("destroying it again: %v", e)
		}
		if obj := f.(types.ManagedObjectNotFound).Obj; obj != s.a.Reference() {
			return fmt.Errorf("ManagedObjectNotFound.obj %s, want %s", obj, s.a.Reference())
		}
		vms, err := s.finder.VirtualMachineList(s.ctx, labsFolder+"/*")
		if _, ok := err.(*find.NotFoundError); !ok {
			return fmt.Errorf("%d VMs left in %s (%v)", len(vms), labsFolder, err)
		}
		return nil
	})
}
