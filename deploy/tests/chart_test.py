"""The Helm chart (deploy/helm/bookstore), checked without a cluster (none can run
here): `helm lint`, the rendered manifests validated against Kubernetes's schemas
(kubernetes-validate --strict), and what matters asserted on the rendering: three
replicas per Raft group whose member lists name the DNS names the pods really get
(<pod>.<headless service>.<namespace>.svc.<domain>), ids that are the pods'
ordinals, probes on the ports the containers listen on, a volume per replica,
non-root pods with read-only root filesystems, the shared card-fingerprint secret,
and environment variables the programs really read.

Environment: HELM (the helm binary), KUBERNETES_VALIDATE, BOOKSTORE_BIN (where the
host-built `services` and `server` binaries are).
"""

import os
import re
from pathlib import Path

import yaml

from harness import Checks, env_names_read, ports_outside_the_map, require, run

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "bookstore"
HELM = os.environ.get("HELM", "helm")
VALIDATE = os.environ.get("KUBERNETES_VALIDATE", "kubernetes-validate")
BIN = Path(os.environ.get("BOOKSTORE_BIN", ROOT / "target" / "debug"))
RAFT_GROUPS = {"books-db": "BOOKS_DB", "order-executor": "ORDER_EXECUTOR"}


def render(*settings, namespace="default", release="bookstore"):
    text = run([HELM, "template", release, str(CHART), "--namespace", namespace, *settings])
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


class Rendering:
    def __init__(self, docs, namespace, release):
        self.docs = docs
        self.namespace = namespace
        self.release = release

    def of(self, kind):
        return {doc["metadata"]["name"]: doc for doc in self.docs if doc["kind"] == kind}

    def workloads(self):
        return {**self.of("Deployment"), **self.of("StatefulSet")}

    def name(self, component):
        return f"{self.release}-{component}"


def container(workload):
    [only] = workload["spec"]["template"]["spec"]["containers"]
    return only


def env(workload):
    return {entry["name"]: entry for entry in container(workload).get("env", [])}


def env_value(workload, name):
    entry = env(workload).get(name)
    require(entry is not None and "value" in entry, f"{workload['metadata']['name']} has no {name} value")
    return entry["value"]


def named_ports(workload):
    return {entry["name"]: entry["containerPort"] for entry in container(workload)["ports"]}


def port(workload):
    """The port a workload serves on: gRPC's, or the web server's http."""
    ports = named_ports(workload)
    return ports.get("grpc", ports.get("http"))


def expected_hosts(rendering, component, replicas, domain="cluster.local"):
    name = rendering.name(component)
    sts = rendering.of("StatefulSet")[name]
    service = sts["spec"]["serviceName"]
    return [f"{name}-{ordinal}.{service}.{rendering.namespace}.svc.{domain}:{port(sts)}" for ordinal in range(replicas)]


def check_raft_groups(rendering, replicas, domain="cluster.local"):
    sets = rendering.of("StatefulSet")
    services = rendering.of("Service")
    budgets = rendering.of("PodDisruptionBudget")
    for component, prefix in RAFT_GROUPS.items():
        name = rendering.name(component)
        require(name in sets, f"no StatefulSet {name}")
        sts = sets[name]
        spec = sts["spec"]
        require(spec["replicas"] == replicas, f"{name} has {spec['replicas']} replicas, not {replicas}")
        require(spec["podManagementPolicy"] == "Parallel", f"{name} does not start its pods in parallel")
        service = services.get(spec["serviceName"])
        require(service is not None, f"{name}'s serviceName {spec['serviceName']} is no Service of the chart")
        require(service["spec"].get("clusterIP") == "None", f"{service['metadata']['name']} is not headless")
        require(service["spec"].get("publishNotReadyAddresses") is True, f"{name}'s peers vanish from DNS when unready")
        require(service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items(),
                f"{service['metadata']['name']} does not select {name}'s pods")
        hosts = expected_hosts(rendering, component, replicas, domain)
        members = env_value(sts, f"{prefix}_MEMBERS").split(",")
        require(members == [f"{ordinal}={host}" for ordinal, host in enumerate(hosts)],
                f"{name}'s members {members} are not its pods' DNS names {hosts}")
        identity = env(sts).get(f"{prefix}_ID", {})
        require(identity.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                == "metadata.labels['apps.kubernetes.io/pod-index']", f"{name}'s Raft id is not its pod ordinal")
        require(env_value(sts, f"{prefix}_ADDR") == f"0.0.0.0:{port(sts)}", f"{name} listens elsewhere")
        claims = spec.get("volumeClaimTemplates", [])
        require(len(claims) == 1, f"{name} has no volume per replica")
        mounts = {mount["name"]: mount["mountPath"] for mount in container(sts).get("volumeMounts", [])}
        require(mounts.get(claims[0]["metadata"]["name"]) == env_value(sts, f"{prefix}_DATA_DIR"),
                f"{name} keeps its data outside its volume: {mounts}")
        budget = budgets.get(name)
        require(budget is not None and budget["spec"].get("maxUnavailable") == 1,
                f"{name} has no PodDisruptionBudget allowing one replica down")
        require(budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"],
                f"{name}'s budget selects other pods")
    # Everything that calls a group names the same pods.
    workloads = rendering.workloads()
    books = ",".join(f"http://{host}" for host in expected_hosts(rendering, "books-db", replicas, domain))
    executors = ",".join(f"http://{host}" for host in expected_hosts(rendering, "order-executor", replicas, domain))
    for component in ("web", "transaction-verification", "order-executor"):
        require(env_value(workloads[rendering.name(component)], "BOOKS_DB_URLS") == books,
                f"{component} calls other books_db replicas")
    require(env_value(workloads[rendering.name("web")], "ORDER_EXECUTOR_URLS") == executors,
            "the web server asks other executors")


def lint():
    output = run([HELM, "lint", str(CHART), "--strict"])
    require("0 chart(s) failed" in output, output)


def validates():
    text, _ = render()
    run([VALIDATE, "--strict", "--quiet", "-"], input_text=text)
    text, _ = render("--set", "raft.replicas=5", "--set", "web.replicas=4", namespace="shop")
    run([VALIDATE, "--strict", "--quiet", "-"], input_text=text)


def default_raft_groups():
    _, docs = render()
    check_raft_groups(Rendering(docs, "default", "bookstore"), 3)


def resized_raft_groups():
    _, docs = render("--set", "raft.replicas=5", "--set", "clusterDomain=example.internal",
                     namespace="shop", release="books")
    check_raft_groups(Rendering(docs, "shop", "books"), 5, domain="example.internal")


def singletons():
    _, docs = render()
    rendering = Rendering(docs, "default", "bookstore")
    sets = rendering.of("StatefulSet")
    for component, prefix in (("order-queue", "ORDER_QUEUE"), ("payment", "PAYMENT")):
        sts = sets.get(rendering.name(component))
        require(sts is not None, f"{component} is not a StatefulSet")
        require(sts["spec"]["replicas"] == 1, f"{component} has more than one writer")
        require(len(sts["spec"].get("volumeClaimTemplates", [])) == 1, f"{component} has no volume")
        require(env_value(sts, f"{prefix}_DATA_DIR") == container(sts)["volumeMounts"][0]["mountPath"],
                f"{component} keeps its data outside its volume")
    deployments = rendering.of("Deployment")
    for component in ("transaction-verification", "fraud-detection", "suggestions"):
        deployment = deployments[rendering.name(component)]
        require(deployment["spec"]["replicas"] == 1, f"{component} must run one replica")
        require(deployment["spec"]["strategy"]["type"] == "Recreate", f"{component} could run twice in an update")
    require(deployments[rendering.name("web")]["spec"]["replicas"] >= 2, "the stateless web server runs one replica")


def probes_and_services():
    _, docs = render()
    rendering = Rendering(docs, "default", "bookstore")
    services = rendering.of("Service")
    for name, workload in rendering.workloads().items():
        box = container(workload)
        listening = port(workload)
        for kind in ("readinessProbe", "livenessProbe"):
            probe = box.get(kind)
            require(probe is not None, f"{name} has no {kind}")
            if name == rendering.name("web"):
                require(probe.get("httpGet", {}).get("path") == "/healthz", f"web's {kind} is not GET /healthz")
                named = {entry["name"]: entry["containerPort"] for entry in box["ports"]}
                require(named.get(probe["httpGet"]["port"]) == listening, f"web's {kind} asks another port")
            else:
                require(probe.get("grpc", {}).get("port") == listening,
                        f"{name}'s {kind} is not a gRPC probe on its port {listening}: {probe}")
        service = services.get(name)
        require(service is not None, f"{name} has no Service")
        require(service["spec"]["selector"].items() <= workload["spec"]["template"]["metadata"]["labels"].items(),
                f"Service {name} selects no pod of {name}")
        for service_port in service["spec"]["ports"]:
            require(service_port["targetPort"] in {entry["name"] for entry in box["ports"]},
                    f"Service {name} targets a port {name} does not name")
    # A single-replica service's URL names its Service and its port.
    for name, workload in rendering.workloads().items():
        for variable, entry in env(workload).items():
            match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", entry.get("value", ""))
            if variable.endswith("_URL") and match:
                target = services.get(match.group(1))
                require(target is not None, f"{name}'s {variable} names no Service: {entry['value']}")
                require(int(match.group(2)) == target["spec"]["ports"][0]["port"],
                        f"{name}'s {variable} uses another port than {match.group(1)}")


def security_and_resources():
    _, docs = render()
    rendering = Rendering(docs, "default", "bookstore")
    for name, workload in rendering.workloads().items():
        pod = workload["spec"]["template"]["spec"]
        require(pod["securityContext"].get("runAsNonRoot") is True, f"{name} may run as root")
        box = container(workload)
        context = box["securityContext"]
        require(context.get("readOnlyRootFilesystem") is True, f"{name} writes its root filesystem")
        require(context.get("allowPrivilegeEscalation") is False, f"{name} may escalate privileges")
        resources = box.get("resources", {})
        require(resources.get("requests") and resources.get("limits"), f"{name} has no requests and limits")
    secrets = rendering.of("Secret")
    for component in ("web", "payment"):
        key = env(rendering.workloads()[rendering.name(component)]).get("CARD_FINGERPRINT_KEY", {})
        reference = key.get("valueFrom", {}).get("secretKeyRef", {})
        require(reference.get("name") in secrets and reference.get("key") == "CARD_FINGERPRINT_KEY",
                f"{component} does not read CARD_FINGERPRINT_KEY from the chart's Secret")


def commands_and_variables_exist():
    """Every container runs a real subcommand and is given only variables it reads."""
    _, docs = render("--set", "logFilter=debug", "--set", "web.corsAllowedOrigins=http://shop.example",
                     "--set", "observability.otlpEndpoint=http://collector:4317",
                     "--set", "observability.tracesSampler=parentbased_traceidratio",
                     "--set", "observability.tracesSamplerArg=0.1")
    rendering = Rendering(docs, "default", "bookstore")
    for name, workload in rendering.workloads().items():
        args = container(workload)["args"]
        program = BIN / args[0]
        require(program.exists(), f"{program} is missing: build first (make test builds it)")
        read = env_names_read(str(program), *args[1:2])
        unread = set(env(workload)) - read
        require(not unread, f"{name} is given {sorted(unread)}, which `{' '.join(args)}` does not read")


METRICS_PREFIXES = {
    "fraud-detection": "FRAUD_DETECTION", "transaction-verification": "TRANSACTION_VERIFICATION",
    "suggestions": "SUGGESTIONS", "order-queue": "ORDER_QUEUE", "payment": "PAYMENT",
    "books-db": "BOOKS_DB", "order-executor": "ORDER_EXECUTOR",
}


def observability():
    """Every pod is annotated for scraping on the port its process serves /metrics
    on, every Service names that port `metrics` (what the ServiceMonitor scrapes),
    the OTLP endpoint reaches every process, and the ServiceMonitor is there only
    when asked for."""
    _, docs = render("--set", "observability.otlpEndpoint=http://collector.monitoring:4317",
                     "--set", "observability.logFormat=json")
    rendering = Rendering(docs, "default", "bookstore")
    require(not rendering.of("ServiceMonitor"), "a ServiceMonitor by default")
    services = rendering.of("Service")
    for name, workload in rendering.workloads().items():
        component = name.removeprefix(f"{rendering.release}-")
        ports = named_ports(workload)
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        require(annotations.get("prometheus.io/scrape") == "true", f"{name}'s pods are not annotated for scraping")
        require(annotations.get("prometheus.io/path") == "/metrics", f"{name} is scraped elsewhere than /metrics")
        if component == "web":
            metrics = ports["http"]
        else:
            metrics = ports.get("metrics")
            require(metrics is not None, f"{name} names no metrics port")
            address = env_value(workload, f"{METRICS_PREFIXES[component]}_METRICS_ADDR")
            require(address == f"0.0.0.0:{metrics}", f"{name} serves its metrics on {address}, not its port {metrics}")
        require(annotations.get("prometheus.io/port") == str(metrics), f"{name} is annotated with another port")
        service_ports = {entry["name"]: entry for entry in services[name]["spec"]["ports"]}
        require("metrics" in service_ports, f"Service {name} has no metrics port")
        target = service_ports["metrics"]["targetPort"]
        require(ports.get(target) == metrics, f"Service {name}'s metrics port targets {target}")
        require(env_value(workload, "OTEL_EXPORTER_OTLP_ENDPOINT") == "http://collector.monitoring:4317",
                f"{name} does not export to the endpoint")
        require(env_value(workload, "LOG_FORMAT") == "json", f"{name} does not log JSON lines")
    _, docs = render("--set", "observability.serviceMonitor.enabled=true",
                     "--set", "observability.serviceMonitor.labels.release=prometheus")
    rendering = Rendering(docs, "default", "bookstore")
    [monitor] = rendering.of("ServiceMonitor").values()
    spec = monitor["spec"]
    require(monitor["metadata"]["labels"].get("release") == "prometheus", "the ServiceMonitor lacks its labels")
    require(spec["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}], f"{spec['endpoints']}")
    selected = [service for service in rendering.of("Service").values()
                if spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()]
    require(len(selected) == len(rendering.workloads()), "the ServiceMonitor does not select every workload's Service")
    require(spec["jobLabel"] == "app.kubernetes.io/name"
            and all(service["metadata"]["labels"]["app.kubernetes.io/name"] == "bookstore" for service in selected),
            "the scrape job is not named bookstore, as the dashboards expect")


def ports_are_the_port_map():
    """The chart's ports are those of the one port map (platform/src/ports.rs)."""
    values = (ROOT / "deploy" / "helm" / "bookstore" / "values.yaml").read_text()
    stray = ports_outside_the_map(values, BIN / "services")
    require(not stray, f"values.yaml names ports {stray}, which `services ports` does not list")


def main():
    checks = Checks("chart")
    checks.check("helm lint --strict", lint)
    checks.check("the rendered manifests validate against Kubernetes's schemas (strict)", validates)
    checks.check("3 replicas per Raft group, members named by their pods' DNS names", default_raft_groups)
    checks.check("raft.replicas=5 in another namespace and domain names 5 pods there", resized_raft_groups)
    checks.check("queue and payment: one writer with a volume; verification: one replica", singletons)
    checks.check("probes on the ports the containers listen on; Services select their pods", probes_and_services)
    checks.check("non-root, read-only root filesystems, limits, the shared secret", security_and_resources)
    checks.check("every container runs a real subcommand with variables it reads", commands_and_variables_exist)
    checks.check("scrape annotations, metrics ports, the OTLP endpoint; a ServiceMonitor on request", observability)
    checks.check("its ports are the port map's (services ports)", ports_are_the_port_map)
    checks.finish()


if __name__ == "__main__":
    main()
