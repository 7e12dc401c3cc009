#!/usr/bin/env python3
"""Checks the manifests `helm template` rendered from packaging/helm/brama (read on stdin).

    helm template t packaging/helm/brama [--set ...] | check-helm-manifests.py --replicas 3 \
        --config-secret t-brama-config --pg-secret brama-postgresql --pg-key url

What a cluster would otherwise find out the hard way: the probes hit /health on the port brama's
admin listener is bound to, the pod cannot write its root filesystem or gain privileges, the
configuration comes from a Secret, and the PostgreSQL URL is a Secret's file mounted exactly where
the configuration's [store] url_file points. Every failure is listed; the exit code is 1 if any.
"""

import argparse
import base64
import posixpath
import sys
import tomllib

import yaml

ADMIN_PORT = 5588
TRAFFIC_PORTS = {8080, 8443, 5500, 5577}
DEFAULT_SHUTDOWN_GRACE_MS = 10000

problems = []


def check(ok, message):
    if not ok:
        problems.append(message)
    return ok


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    if not check(len(found) == 1, f"expected one {kind}, found {len(found)}"):
        return None
    return found[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, required=True)
    ap.add_argument("--config-secret", required=True, help="the Secret the configuration comes from")
    ap.add_argument("--config-rendered", action="store_true",
                    help="the chart renders that Secret (else it is an existing one)")
    ap.add_argument("--pg-secret", required=True)
    ap.add_argument("--pg-key", required=True)
    args = ap.parse_args()

    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    sts = one(docs, "StatefulSet")
    if sts is None:
        return report()
    spec = sts["spec"]
    check(spec.get("replicas") == args.replicas,
          f"StatefulSet replicas {spec.get('replicas')!r}, expected {args.replicas}")
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    check(spec["selector"]["matchLabels"].items() <= pod_labels.items(),
          "StatefulSet selector does not select its own pods")
    containers = pod.get("containers", [])
    if not check(len(containers) == 1, f"expected one container, found {len(containers)}"):
        return report()
    c = containers[0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}

    def port_number(p):
        return ports.get(p) if isinstance(p, str) else p

    def secret_mount(secret_name):
        """The mount of the volume made from this Secret, and the volume."""
        for m in mounts.values():
            v = volumes.get(m["name"], {})
            if v.get("secret", {}).get("secretName") == secret_name:
                return m, v
        return None, None

    # Probes on the admin port: readiness and start-up on /health (X-Road's health check),
    # liveness on /health/live (alive while it serves; a restart mends nothing /health reports).
    for probe, path in (("readinessProbe", "/health"), ("startupProbe", "/health"),
                        ("livenessProbe", "/health/live")):
        get = c.get(probe, {}).get("httpGet")
        if check(get is not None, f"{probe}: no httpGet"):
            check(get.get("path") == path, f"{probe}: path {get.get('path')!r}, not {path}")
            check(port_number(get.get("port")) == ADMIN_PORT,
                  f"{probe}: port {get.get('port')!r} is not the admin port {ADMIN_PORT}")

    # Security context: non-root, read-only root filesystem, no privilege, no capability.
    psc = pod.get("securityContext", {})
    sc = c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True or sc.get("runAsNonRoot") is True, "runAsNonRoot is not set")
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    check(isinstance(uid, int) and uid > 0, f"runAsUser {uid!r} is not a numeric non-root user")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
          or sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "no RuntimeDefault seccomp profile")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    check(not sc.get("privileged"), "the container is privileged")
    caps = sc.get("capabilities", {})
    check("ALL" in caps.get("drop", []), "capabilities do not drop ALL")
    check(not caps.get("add"), f"capabilities added: {caps.get('add')}")
    check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"),
          "the pod shares a host namespace")
    check(not any("hostPath" in v for v in volumes.values()), "a hostPath volume")
    check(pod.get("automountServiceAccountToken") is False, "the service account token is mounted")
    # What brama writes, with the root filesystem read-only.
    check("/tmp" in mounts, "/tmp is not a volume (REST bodies are spooled there)")
    claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
    data = mounts.get("/var/lib/brama")
    check(data is not None and (data["name"] in volumes or data["name"] in claims),
          "/var/lib/brama is not a volume")

    # The configuration: a Secret, the directory --config names.
    argv = c.get("args", [])
    config_file = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else None
    check(argv[:1] == ["serve"] and config_file, f"args {argv!r} are not serve --config FILE")
    m, _ = secret_mount(args.config_secret)
    if check(m is not None, f"Secret {args.config_secret} is not mounted"):
        check(m.get("readOnly") is True, "the configuration is mounted writable")
        check(config_file and posixpath.dirname(config_file) == m["mountPath"],
              f"--config {config_file} is not in the configuration Secret's mount {m['mountPath']}")
    config_secrets = [d for d in docs if d.get("kind") == "Secret"
                      and d["metadata"]["name"] == args.config_secret]
    annotations = spec["template"]["metadata"].get("annotations") or {}
    toml = None
    if args.config_rendered:
        if check(len(config_secrets) == 1, f"the chart rendered no Secret {args.config_secret}"):
            raw = config_secrets[0].get("data", {}).get(posixpath.basename(config_file or ""))
            if check(raw is not None, f"Secret {args.config_secret} has no {config_file}"):
                toml = tomllib.loads(base64.b64decode(raw).decode())
        check("checksum/config" in annotations, "no checksum/config annotation: a new configuration would not roll the pods")
    else:
        check(not config_secrets, f"the chart rendered Secret {args.config_secret}, which exists already")

    # PostgreSQL: the URL is a Secret's key, mounted where [store] url_file points.
    m, v = secret_mount(args.pg_secret)
    url_path = None
    if check(m is not None, f"Secret {args.pg_secret} (PostgreSQL URL) is not mounted"):
        check(m.get("readOnly") is True, "the PostgreSQL Secret is mounted writable")
        items = {i["key"]: i["path"] for i in v["secret"].get("items", [])}
        if check(args.pg_key in items, f"Secret {args.pg_secret} key {args.pg_key} is not projected"):
            url_path = posixpath.join(m["mountPath"], items[args.pg_key])
    env_from_secret = [e for e in c.get("env", []) if "valueFrom" in e]
    check(not env_from_secret, "a Secret is passed in the environment (visible in /proc)")

    if toml is not None:
        store = toml.get("store", {})
        check("url" not in store, "brama.toml has [store] url: the password would be in the configuration")
        check(store.get("url_file") == url_path,
              f"brama.toml [store] url_file {store.get('url_file')!r}, the Secret's file is {url_path!r}")
        admin = toml.get("listeners", {}).get("admin", "")
        check(admin == f"0.0.0.0:{ADMIN_PORT}",
              f"brama.toml [listeners] admin {admin!r}: the probes need 0.0.0.0:{ADMIN_PORT}")
        for key, addr in toml.get("listeners", {}).items():
            port = int(addr.rsplit(":", 1)[1])
            check(port in ports.values(), f"[listeners] {key} port {port} is not a container port")
        keys_mount = [p for p in mounts if p.endswith("/pki")]
        for key in ("auth_cert", "auth_key", "internal_cert", "internal_key"):
            path = toml.get("tls", {}).get(key, "")
            check(any(path.startswith(p + "/") for p in keys_mount),
                  f"[tls] {key} {path!r} is not in the keys Secret's mount")
        grace = toml.get("limits", {}).get("shutdown_grace_ms", DEFAULT_SHUTDOWN_GRACE_MS) / 1000
        stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = int(stop[1]) if stop[:1] == ["sleep"] else 0
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        check(tgps > sleep + grace,
              f"terminationGracePeriodSeconds {tgps} leaves no time to drain ({sleep} s preStop + {grace} s grace)")

    # The Service: the traffic ports, to the pods, never the admin port.
    services = [d for d in docs if d.get("kind") == "Service"]
    main_svc = [s for s in services if s["spec"].get("clusterIP") != "None"]
    if check(len(main_svc) == 1, f"expected one Service with a cluster IP, found {len(main_svc)}"):
        s = main_svc[0]["spec"]
        check(s["selector"].items() <= pod_labels.items(), "the Service does not select the pods")
        targets = {port_number(p["targetPort"]) for p in s["ports"]}
        check(targets == TRAFFIC_PORTS, f"Service targets ports {sorted(targets, key=str)}, expected {sorted(TRAFFIC_PORTS)}")
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    check([s["metadata"]["name"] for s in headless] == [spec.get("serviceName")],
          "the StatefulSet's serviceName is not its headless Service")

    pdb = one(docs, "PodDisruptionBudget")
    if pdb:
        check(pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(),
              "the PodDisruptionBudget does not select the pods")
    for np in (d for d in docs if d.get("kind") == "NetworkPolicy"):
        for rule in np["spec"].get("ingress", []):
            opened = {port_number(p.get("port")) for p in rule.get("ports", [])}
            check(ADMIN_PORT not in opened or rule.get("from"),
                  "the NetworkPolicy opens the admin port to everyone")
    return report()


def report():
    for p in problems:
        print(f"check-helm-manifests: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
