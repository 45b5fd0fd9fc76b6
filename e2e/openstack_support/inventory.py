"""Everything of the test project on the hke OpenStack test bed, as JSON.

    $HKE_CACHE/openstack/venv/bin/python inventory.py DIR/clouds.yaml

Prints one JSON document read through the APIs (openstacksdk sessions, the
raw REST answers, so the test sees the fields as the services return them):
the project's networks, subnets, routers, ports, security groups (with
their rules), floating IPs, keypairs, the external networks and Octavia
objects (load balancers, listeners, pools with their members, health
monitors) as the `hke-test` user, and the project's servers as
`hke-test-admin` with microversion 2.73, which adds
`OS-EXT-SRV-ATTR:user_data` (2.3, admin only by default policy) and `tags`
(2.26), with the names of their image and flavor. The test
(e2e/openstack.rs) makes its assertions on it.
"""

import json
import os
import sys

import openstack

NOVA = "2.73"


def main():
    os.environ["OS_CLIENT_CONFIG_FILE"] = sys.argv[1]
    user = openstack.connect(cloud="hke-test")
    admin = openstack.connect(cloud="hke-test-admin")
    project = user.current_project_id

    def get(proxy, path, key, **kw):
        r = proxy.get(path, **kw)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code} {r.text}")
        return r.json()[key]

    net = user.network
    out = {"project": project}
    for path, key in [
        ("/networks", "networks"),
        ("/subnets", "subnets"),
        ("/routers", "routers"),
        ("/ports", "ports"),
        ("/security-groups", "security_groups"),
        ("/floatingips", "floatingips"),
    ]:
        out[key] = [o for o in get(net, path, key) if o.get("project_id", project) == project]
    out["external_networks"] = get(net, "/networks?router:external=true", "networks")
    out["keypairs"] = [
        k["keypair"] for k in get(user.compute, "/os-keypairs", "keypairs", microversion=NOVA)
    ]
    servers = get(
        admin.compute,
        f"/servers/detail?all_tenants=1&project_id={project}",
        "servers",
        microversion=NOVA,
    )
    out["servers"] = servers
    flavors = {f["id"]: f["name"] for f in get(admin.compute, "/flavors/detail?is_public=None", "flavors")}
    images = {i["id"]: i["name"] for i in get(user.image, "/images", "images")}
    for s in servers:
        # 2.47+ embeds the flavor (its original_name); the image stays an id.
        s["hke_image_name"] = images.get((s.get("image") or {}).get("id", ""), "")
        s["hke_flavor_name"] = (s.get("flavor") or {}).get("original_name") or flavors.get(
            (s.get("flavor") or {}).get("id", ""), ""
        )
    lb = user.load_balancer
    out["loadbalancers"] = get(lb, "/lbaas/loadbalancers", "loadbalancers")
    out["listeners"] = get(lb, "/lbaas/listeners", "listeners")
    pools = get(lb, "/lbaas/pools", "pools")
    for p in pools:
        p["hke_members"] = get(lb, f"/lbaas/pools/{p['id']}/members", "members")
    out["pools"] = pools
    out["healthmonitors"] = get(lb, "/lbaas/healthmonitors", "healthmonitors")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
