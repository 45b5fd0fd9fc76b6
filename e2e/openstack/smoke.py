"""Smoke test of the hke OpenStack test bed, as an IaaS client would use it.

    $HKE_CACHE/openstack/venv/bin/python e2e/openstack/smoke.py DIR [--cloud NAME ...]

For each cloud (default: hke-test, then hke-test-appcred) from DIR/clouds.yaml:
network + subnet, router with external gateway + interface, security group +
rules, a port with a fixed IP, a keypair, one server per image (user_data,
metadata, tags) -> ACTIVE, a floating IP on a port, the console log, an
Octavia LB + listener + pool + member + health monitor (when Octavia runs),
tags on network/port/server and listing by tag; then everything is deleted in
dependency order and the project is checked to hold none of it. Prints the
time of every step; exits non-zero on the first failure (after cleaning up).
"""

import argparse
import base64
import contextlib
import os
import sys
import time
import uuid

import openstack
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

IMAGES = {"ubuntu-22.04": "hke.2c4g", "windows-2022": "hke.4c16g"}
EXTERNAL_NETWORK = "public"
CIDR, FIXED_IP = "10.42.0.0/24", "10.42.0.50"


class Smoke:
    def __init__(self, cloud, octavia):
        self.cloud = cloud
        self.octavia = octavia
        self.prefix = f"smoke-{uuid.uuid4().hex[:6]}"
        self.tag = self.prefix + "-tag"
        self.conn = openstack.connect(cloud=cloud)
        self.made = {}  # kind -> list of resources, for cleanup
        self.steps = []

    @contextlib.contextmanager
    def step(self, name):
        t0 = time.monotonic()
        try:
            yield
        finally:
            dt = time.monotonic() - t0
            self.steps.append((name, dt))
            print(f"  [{self.cloud}] {name:<46} {dt:6.2f} s", flush=True)

    def keep(self, kind, res):
        self.made.setdefault(kind, []).append(res)
        return res

    # ------------------------------------------------------------ create

    def run(self):
        c = self.conn
        n = self.prefix
        with self.step("authenticate + catalog"):
            c.authorize()
            types = {e["type"] for e in c.service_catalog}
            need = {"identity", "compute", "network", "image", "placement"}
            if self.octavia:
                need.add("load-balancer")
            assert need <= types, f"catalog lacks {need - types}: {sorted(types)}"

        with self.step("find images, flavors, external network"):
            images = {name: c.image.find_image(name, ignore_missing=False) for name in IMAGES}
            assert images["windows-2022"].properties.get("os_type") == "windows" or \
                getattr(images["windows-2022"], "os_type", None) == "windows", \
                "windows-2022 lacks os_type=windows"
            flavors = {f: c.compute.find_flavor(f, ignore_missing=False)
                       for f in set(IMAGES.values())}
            public = c.network.find_network(EXTERNAL_NETWORK, ignore_missing=False)
            assert public.is_router_external

        with self.step("network + subnet"):
            net = self.keep("network", c.network.create_network(name=n + "-net"))
            subnet = self.keep("subnet", c.network.create_subnet(
                network_id=net.id, name=n + "-subnet", ip_version=4, cidr=CIDR,
                dns_nameservers=["192.0.2.53"]))

        with self.step("router + external gateway + interface"):
            router = self.keep("router", c.network.create_router(
                name=n + "-router", external_gateway_info={"network_id": public.id}))
            c.network.add_interface_to_router(router, subnet_id=subnet.id)
            self.made["router_if"] = [(router, subnet)]
            router = c.network.get_router(router.id)
            gw_ips = router.external_gateway_info["external_fixed_ips"]
            assert gw_ips, "router got no gateway IP"

        with self.step("security group + rules"):
            sg = self.keep("security_group", c.network.create_security_group(
                name=n + "-sg", description="hke smoke"))
            for port in (22, 6443, 3389):
                c.network.create_security_group_rule(
                    security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                    protocol="tcp", port_range_min=port, port_range_max=port,
                    remote_ip_prefix="0.0.0.0/0")
            c.network.create_security_group_rule(
                security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                protocol="icmp", remote_group_id=sg.id)

        with self.step("port with a fixed IP"):
            port = self.keep("port", c.network.create_port(
                network_id=net.id, name=n + "-port",
                fixed_ips=[{"subnet_id": subnet.id, "ip_address": FIXED_IP}],
                security_group_ids=[sg.id]))
            assert port.fixed_ips[0]["ip_address"] == FIXED_IP

        with self.step("keypair"):
            pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
            kp = self.keep("keypair", c.compute.create_keypair(
                name=n + "-key", public_key=pub + " hke-smoke"))

        servers = []
        with self.step("2 servers (user_data, metadata, tags) -> ACTIVE"):
            user_data = base64.b64encode(b"#cloud-config\nhostname: hke-smoke\n").decode()
            for i, (image, flavor) in enumerate(IMAGES.items()):
                # vm0 boots on the pre-made port (which carries the SG); vm1
                # gets a port from Nova on the network, with the SG by name.
                extra = {"networks": [{"port": port.id}]} if i == 0 else {
                    "networks": [{"uuid": net.id}], "security_groups": [{"name": sg.name}]}
                s = self.keep("server", c.compute.create_server(
                    name=f"{n}-vm{i}", image_id=images[image].id,
                    flavor_id=flavors[flavor].id, key_name=kp.name, **extra,
                    user_data=user_data,
                    metadata={"hke-cluster": n, "hke-role": "worker", "os": image},
                    tags=[self.tag, "hke"]))
                servers.append(s)
            servers = [c.compute.wait_for_server(s, status="ACTIVE", wait=180) for s in servers]
            for s in servers:
                assert s.metadata["hke-cluster"] == n, s.metadata
                assert self.tag in (s.tags or []), s.tags
            assert servers[0].addresses[net.name][0]["addr"] == FIXED_IP, servers[0].addresses

        with self.step("floating IP on the server's port"):
            fip = self.keep("floating_ip", c.network.create_ip(
                floating_network_id=public.id, port_id=port.id))
            fip = c.network.get_ip(fip.id)
            assert fip.port_id == port.id and fip.fixed_ip_address == FIXED_IP

        with self.step("console log"):
            out = c.compute.get_server_console_output(servers[0])["output"]
            assert out, "empty console output"
            print(f"  [{self.cloud}]   console: {out.splitlines()[0]!r} ...")

        with self.step("tags on network/port/server + list by tag"):
            c.network.set_tags(net, [self.tag, "hke"])
            c.network.set_tags(port, [self.tag, "hke"])
            servers[1].add_tag(c.compute, "hke-extra")
            assert [x.id for x in c.network.networks(tags=self.tag)] == [net.id]
            assert [x.id for x in c.network.ports(tags=self.tag)] == [port.id]
            tagged = sorted(x.id for x in c.compute.servers(tags=self.tag))
            assert tagged == sorted(s.id for s in servers), tagged
            assert [x.id for x in c.compute.servers(tags="hke-extra")] == [servers[1].id]

        if self.octavia:
            lb_ = c.load_balancer
            with self.step("LB -> ACTIVE"):
                lb = self.keep("load_balancer", lb_.create_load_balancer(
                    name=n + "-lb", vip_subnet_id=subnet.id, tags=[self.tag]))
                lb = lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=180)
            with self.step("listener + pool + member + health monitor"):
                lst = lb_.create_listener(name=n + "-api", protocol="TCP", protocol_port=6443,
                                          load_balancer_id=lb.id)
                lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                pool = lb_.create_pool(name=n + "-pool", protocol="TCP",
                                       lb_algorithm="ROUND_ROBIN", listener_id=lst.id)
                lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                lb_.create_member(pool, name=n + "-m0", address=FIXED_IP,
                                  protocol_port=6443, subnet_id=subnet.id)
                lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                lb_.create_health_monitor(name=n + "-hm", pool_id=pool.id, type="TCP",
                                          delay=5, timeout=3, max_retries=3)
                lb = lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                assert [x.id for x in lb_.load_balancers(tags=self.tag)] == [lb.id]
                self.made["lb_parts"] = [(lb, lst, pool)]
            with self.step("VIP in the subnet + floating IP on the VIP port"):
                vip_port = c.network.get_port(lb.vip_port_id)
                assert vip_port.network_id == net.id, (vip_port.network_id, net.id)
                assert lb.vip_address.startswith("10.42.0."), lb.vip_address
                self.keep("floating_ip", c.network.create_ip(
                    floating_network_id=public.id, port_id=lb.vip_port_id))

    # ------------------------------------------------------------ delete

    def cleanup(self):
        c = self.conn
        errors = []

        def attempt(what, fn):
            try:
                fn()
            except Exception as e:  # keep cleaning, report at the end
                errors.append(f"{what}: {e!r}")

        with self.step("delete everything (dependency order)"):
            for f in self.made.get("floating_ip", []):
                attempt("floating ip", lambda f=f: c.network.delete_ip(f))
            lb_ = c.load_balancer if self.octavia else None
            for lb, lst, pool in self.made.get("lb_parts", []):
                def lb_parts(lb=lb, lst=lst, pool=pool):
                    p = lb_.get_pool(pool.id)
                    if p.health_monitor_id:
                        lb_.delete_health_monitor(p.health_monitor_id)
                        lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                    for m in list(lb_.members(pool)):
                        lb_.delete_member(m, pool)
                        lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                    lb_.delete_pool(pool)
                    lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                    lb_.delete_listener(lst)
                    lb_.wait_for_load_balancer(lb.id, status="ACTIVE", wait=120)
                attempt("lb parts", lb_parts)
            for lb in self.made.get("load_balancer", []):
                def lb_del(lb=lb):
                    lb_.delete_load_balancer(lb, cascade=True)
                    lb_.wait_for_delete(lb, wait=120)
                attempt("lb", lb_del)
            for s in self.made.get("server", []):
                attempt("server", lambda s=s: c.compute.delete_server(s))
            for s in self.made.get("server", []):
                attempt("server wait", lambda s=s: c.compute.wait_for_delete(s, wait=120))
            for p in self.made.get("port", []):
                attempt("port", lambda p=p: c.network.delete_port(p))
            for k in self.made.get("keypair", []):
                attempt("keypair", lambda k=k: c.compute.delete_keypair(k))
            for r, sn in self.made.get("router_if", []):
                attempt("router interface",
                        lambda r=r, sn=sn: c.network.remove_interface_from_router(r, subnet_id=sn.id))
            for r in self.made.get("router", []):
                attempt("router gateway",
                        lambda r=r: c.network.update_router(r, external_gateway_info={}))
                attempt("router", lambda r=r: c.network.delete_router(r))
            for sn in self.made.get("subnet", []):
                attempt("subnet", lambda sn=sn: c.network.delete_subnet(sn))
            for nt in self.made.get("network", []):
                attempt("network", lambda nt=nt: c.network.delete_network(nt))
            for sg in self.made.get("security_group", []):
                attempt("security group", lambda sg=sg: c.network.delete_security_group(sg))

        with self.step("assert nothing is left"):
            mine = lambda xs: [x for x in xs if (x.name or "").startswith(self.prefix)]  # noqa: E731
            left = {
                "servers": mine(c.compute.servers()),
                "keypairs": mine(c.compute.keypairs()),
                "networks": mine(c.network.networks()),
                "subnets": mine(c.network.subnets()),
                "ports": mine(c.network.ports()),
                "routers": mine(c.network.routers()),
                "security_groups": mine(c.network.security_groups()),
                "floating_ips": [f for f in c.network.ips()
                                 if f.id in {x.id for x in self.made.get("floating_ip", [])}],
            }
            if self.octavia:
                left["load_balancers"] = mine(c.load_balancer.load_balancers())
            left = {k: [x.id for x in v] for k, v in left.items() if v}
            if left:
                errors.append(f"left behind: {left}")
        return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="the DIR given to stack.sh up")
    ap.add_argument("--cloud", action="append",
                    help="cloud name in DIR/clouds.yaml (repeatable)")
    ap.add_argument("--no-octavia", action="store_true")
    args = ap.parse_args()
    os.environ["OS_CLIENT_CONFIG_FILE"] = os.path.join(os.path.abspath(args.dir), "clouds.yaml")
    octavia = not args.no_octavia
    env_file = os.path.join(args.dir, "stack.env")
    if os.path.exists(env_file) and "WITH_OCTAVIA=0" in open(env_file).read():
        octavia = False
    clouds = args.cloud or ["hke-test", "hke-test-appcred"]
    passed = failed = 0
    for cloud in clouds:
        print(f"== {cloud}", flush=True)
        t0 = time.monotonic()
        sm = Smoke(cloud, octavia)
        err = None
        try:
            sm.run()
        except Exception as e:
            import traceback
            traceback.print_exc()
            err = f"{type(e).__name__}: {e}"
        errors = sm.cleanup()
        if err:
            errors.insert(0, err)
        dt = time.monotonic() - t0
        if errors:
            failed += 1
            print(f"FAIL {cloud} in {dt:.1f} s:", *errors, sep="\n  ", flush=True)
        else:
            passed += 1
            print(f"PASS {cloud} in {dt:.1f} s", flush=True)
    print(f"smoke: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
