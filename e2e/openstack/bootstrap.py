"""Bootstrap steps of the hke OpenStack test bed, called by stack.sh up.

    python bootstrap.py identity DIR      projects, users, roles, catalog, app credential
    python bootstrap.py wait-compute DIR  until nova-compute is up and reported
    python bootstrap.py resources DIR     flavors, images, the external network

Reads ports from DIR/stack.env; talks to the APIs with openstacksdk as the
Keystone bootstrap admin (the secrets are test-only constants, as in stack.sh).
"""

import io
import json
import os
import sys
import time

import openstack

ADMIN_PASSWORD = "admin-secret"
USER_NAME, USER_PASSWORD, PROJECT_NAME = "hke", "hke-secret", "hke"
APPCRED_NAME, APPCRED_SECRET = "hke-test-appcred", "hke-appcred-secret"
SERVICE_PASSWORD = "service-secret"
REGION = "RegionOne"
COMPUTE_HOST = "hke-compute-1"
SERVICE_USERS = ["glance", "placement", "neutron", "nova", "octavia"]

# name, flavor id, vCPUs, RAM MiB, root disk GiB
FLAVORS = [
    ("hke.2c4g", 2, 4096, 20),
    ("hke.2c8g", 2, 8192, 40),
    ("hke.4c16g", 4, 16384, 80),
    ("hke.8c32g", 8, 32768, 160),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.large", 4, 8192, 80),
    ("m1.xlarge", 8, 16384, 160),
]

IMAGES = [
    ("ubuntu-22.04", {"os_type": "linux", "os_distro": "ubuntu", "os_version": "22.04",
                      "hw_architecture": "x86_64"}),
    ("windows-2022", {"os_type": "windows", "os_distro": "windows", "os_version": "2022",
                      "hw_architecture": "x86_64"}),
]

AMPHORA_IMAGE_TAG = "hke-amphora"
# TEST-NET-1 (RFC 5737) for Octavia's management network: only database rows.
LB_MGMT_CIDR = "192.0.2.0/24"

# TEST-NET-3 (RFC 5737): documentation addresses, never routed anywhere.
PUBLIC_CIDR, PUBLIC_GW = "203.0.113.0/24", "203.0.113.1"
PUBLIC_POOL = ("203.0.113.10", "203.0.113.250")


def stack_env(d):
    env = {}
    with open(os.path.join(d, "stack.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def connect(env, user="admin", password=ADMIN_PASSWORD, project="admin"):
    return openstack.connect(
        auth_url=f"http://127.0.0.1:{env['KEYSTONE_PORT']}/v3",
        username=user, password=password, project_name=project,
        user_domain_name="Default", project_domain_name="Default",
        region_name=REGION, interface="public", identity_api_version="3")


def log(msg):
    print(f"[bootstrap {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def identity(d, env):
    conn = connect(env)
    idc = conn.identity
    domain = idc.find_domain("default")
    roles = {r.name: r for r in idc.roles()}
    # Octavia's pre-Wallaby role names still map to rights
    # (octavia/policies/advanced_rbac.py); give the user one for clients that
    # check it.
    for name in ("load-balancer_member",):
        if name not in roles:
            roles[name] = idc.create_role(name=name)

    service_project = idc.create_project(name="service", domain_id=domain.id,
                                         description="OpenStack service users")
    project = idc.create_project(name=PROJECT_NAME, domain_id=domain.id,
                                 description="hke test project")
    for name in SERVICE_USERS:
        u = idc.create_user(name=name, password=SERVICE_PASSWORD, domain_id=domain.id,
                            default_project_id=service_project.id)
        # admin for the cross-service calls (e.g. Nova binding ports, Placement
        # inventories); 'service' for the service-role policies that check it.
        for r in ("admin", "service"):
            idc.assign_project_role_to_user(service_project, u, roles[r])
    user = idc.create_user(name=USER_NAME, password=USER_PASSWORD, domain_id=domain.id,
                           default_project_id=project.id, email="hke@example.invalid")
    for r in ("member", "reader", "load-balancer_member"):
        idc.assign_project_role_to_user(project, user, roles[r])

    def url(port, path=""):
        return f"http://127.0.0.1:{env[port]}{path}"

    catalog = [
        ("glance", "image", url("GLANCE_PORT")),
        ("placement", "placement", url("PLACEMENT_PORT")),
        ("neutron", "network", url("NEUTRON_PORT")),
        ("nova", "compute", url("NOVA_PORT", "/v2.1")),
    ]
    if env.get("WITH_OCTAVIA", "1") == "1":
        catalog.append(("octavia", "load-balancer", url("OCTAVIA_PORT")))
    for name, stype, endpoint in catalog:
        svc = idc.create_service(name=name, type=stype, enabled=True)
        for iface in ("public", "internal", "admin"):
            idc.create_endpoint(service_id=svc.id, interface=iface, url=endpoint,
                                region_id=REGION)
    log("projects, users, roles and catalog created")

    uconn = connect(env, USER_NAME, USER_PASSWORD, PROJECT_NAME)
    me = uconn.current_user_id
    cred = uconn.identity.create_application_credential(
        user=me, name=APPCRED_NAME, secret=APPCRED_SECRET,
        description="hke test bed application credential")
    with open(os.path.join(d, "data", "appcred.id"), "w") as f:
        f.write(cred.id)
    log(f"application credential {APPCRED_NAME} = {cred.id}")


def wait_compute(d, env, timeout=240):
    conn = connect(env)
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            # os-hypervisors stays empty until the host is mapped to its cell
            # (discover_hosts, run by stack.sh next), so look at the service
            # and at the resource provider nova-compute made in Placement.
            svcs = [s for s in conn.compute.services()
                    if s.binary == "nova-compute" and s.host == COMPUTE_HOST]
            up = [s for s in svcs if s.state == "up" and s.status == "enabled"]
            rps = list(conn.placement.resource_providers(name=COMPUTE_HOST)) if up else []
            if rps:
                log(f"nova-compute up; resource providers {[r.name for r in rps]}")
                return
            last = f"services={[(s.host, s.state) for s in svcs]} providers={len(rps)}"
        except Exception as e:  # the APIs may still be warming up
            last = repr(e)
        time.sleep(1)
    raise SystemExit(f"nova-compute not ready after {timeout}s: {last}")


def resources(d, env):
    conn = connect(env)
    for name, vcpus, ram, disk in FLAVORS:
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk,
                                   is_public=True)
    log(f"flavors: {[f[0] for f in FLAVORS]}")

    for name, props in IMAGES:
        # 1 MiB of zeros: a valid 'raw' image for Glance's format inspector.
        img = conn.image.create_image(
            name=name, data=io.BytesIO(b"\0" * (1 << 20)), disk_format="raw",
            container_format="bare", visibility="public", **props)
        conn.image.wait_for_status(img, status="active", wait=60)
    log(f"images: {[i[0] for i in IMAGES]}")

    net = conn.network.create_network(
        name="public", is_router_external=True, is_shared=False,
        provider_network_type="flat", provider_physical_network="public")
    conn.network.create_subnet(
        network_id=net.id, name="public-subnet", ip_version=4, cidr=PUBLIC_CIDR,
        gateway_ip=PUBLIC_GW, is_dhcp_enabled=False,
        allocation_pools=[{"start": PUBLIC_POOL[0], "end": PUBLIC_POOL[1]}])
    log(f"external network public ({PUBLIC_CIDR})")
    if env.get("WITH_OCTAVIA", "1") == "1":
        octavia_resources(d, env, conn)
    with open(os.path.join(d, "data", "resources.json"), "w") as f:
        json.dump({"flavors": [f[0] for f in FLAVORS], "images": [i[0] for i in IMAGES],
                   "external_network": "public", "external_subnet": PUBLIC_CIDR}, f)


def octavia_resources(d, env, admin):
    """What Octavia's amphora flows boot in the service project: a (fake)
    amphora image found by tag, a private flavor, the lb-mgmt network and its
    security group. The ids go to a config file the worker reads."""
    service = admin.identity.find_project("service", ignore_missing=False)
    flavor = admin.compute.create_flavor(name="octavia-amphora", vcpus=1, ram=1024,
                                         disk=2, is_public=False)
    admin.compute.flavor_add_tenant_access(flavor, service.id)
    octavia = connect(env, "octavia", SERVICE_PASSWORD, "service")
    img = octavia.image.create_image(
        name="amphora-x64-haproxy", data=io.BytesIO(b"\0" * (1 << 20)),
        disk_format="raw", container_format="bare", visibility="private",
        tags=[AMPHORA_IMAGE_TAG])
    octavia.image.wait_for_status(img, status="active", wait=60)
    net = octavia.network.create_network(name="lb-mgmt-net")
    octavia.network.create_subnet(network_id=net.id, name="lb-mgmt-subnet", ip_version=4,
                                  cidr=LB_MGMT_CIDR)
    sg = octavia.network.create_security_group(name="lb-mgmt-sec-grp")
    octavia.network.create_security_group_rule(
        security_group_id=sg.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=9443, port_range_max=9443)
    with open(os.path.join(d, "data", "octavia", "octavia-ids.conf"), "w") as f:
        f.write("# Written by bootstrap.py: what the amphora flows boot.\n"
                "[controller_worker]\n"
                f"amp_flavor_id = {flavor.id}\n"
                f"amp_image_owner_id = {service.id}\n"
                f"amp_boot_network_list = {net.id}\n"
                f"amp_secgroup_list = {sg.id}\n")
    log("octavia: amphora flavor, image, lb-mgmt-net, lb-mgmt-sec-grp")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    phase, d = sys.argv[1], sys.argv[2]
    env = stack_env(d)
    {"identity": identity, "wait-compute": wait_compute, "resources": resources}[phase](d, env)


if __name__ == "__main__":
    main()
