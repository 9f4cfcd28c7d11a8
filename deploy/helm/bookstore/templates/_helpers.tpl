{{/*
Names. Every object is "<release>-<component>"; the release part is cut so that a
StatefulSet's pods (and their controller-revision-hash label) stay within 63
characters.
*/}}
{{- define "bookstore.name" -}}
{{- printf "%s-%s" (.root.Release.Name | trunc 24 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "bookstore.selectorLabels" -}}
app.kubernetes.io/name: bookstore
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bookstore.labels" -}}
{{ include "bookstore.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "bookstore.secretName" -}}
{{- default (include "bookstore.name" (dict "root" . "component" "card-fingerprint")) .Values.cardFingerprintKey.existingSecret -}}
{{- end -}}

{{/* The image every container runs. */}}
{{- define "bookstore.image" -}}
image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- end -}}

{{/* Non-root, nothing written outside the mounted volumes. */}}
{{- define "bookstore.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "bookstore.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{/* Liveness and readiness through the standard gRPC health service. */}}
{{- define "bookstore.grpcProbes" -}}
readinessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ .root.Values.probes.periodSeconds }}
  timeoutSeconds: {{ .root.Values.probes.timeoutSeconds }}
  failureThreshold: {{ .root.Values.probes.failureThreshold }}
livenessProbe:
  grpc:
    port: {{ .port }}
  initialDelaySeconds: 10
  periodSeconds: {{ .root.Values.probes.periodSeconds }}
  timeoutSeconds: {{ .root.Values.probes.timeoutSeconds }}
  failureThreshold: {{ .root.Values.probes.failureThreshold }}
{{- end -}}

{{/* What every process's logging and tracing read: RUST_LOG when the values
set one, the log format, the OTLP endpoint and the sampler when set. */}}
{{- define "bookstore.telemetryEnv" -}}
{{- with .Values.logFilter }}
- name: RUST_LOG
  value: {{ . | quote }}
{{- end }}
- name: LOG_FORMAT
  value: {{ .Values.observability.logFormat | quote }}
{{- with .Values.observability.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.observability.tracesSampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with .Values.observability.tracesSamplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* A pod's scrape annotations, when the values want them. Arguments: root, port. */}}
{{- define "bookstore.scrapeAnnotations" -}}
{{- if .root.Values.observability.scrapeAnnotations }}
annotations:
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ .port | quote }}
  prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/*
The stable DNS name of every replica of a Raft group, comma-separated:
<pod>.<headless service>.<namespace>.svc.<clusterDomain>:<port>, prefixed with
"<id>=" (a member list, ids = pod ordinals) or "http://" (a list of URLs).
Arguments: root, component, port, form ("members" or "urls").
*/}}
{{- define "bookstore.replicaAddresses" -}}
{{- $name := include "bookstore.name" . -}}
{{- $addresses := list -}}
{{- range $ordinal := until (int .root.Values.raft.replicas) -}}
{{- $host := printf "%s-%d.%s.%s.svc.%s:%v" $name $ordinal $name $.root.Release.Namespace $.root.Values.clusterDomain $.port -}}
{{- if eq $.form "members" -}}
{{- $addresses = append $addresses (printf "%d=%s" $ordinal $host) -}}
{{- else -}}
{{- $addresses = append $addresses (printf "http://%s" $host) -}}
{{- end -}}
{{- end -}}
{{- join "," $addresses -}}
{{- end -}}

{{/* The URL of a single-replica service. Arguments: root, component, port. */}}
{{- define "bookstore.url" -}}
{{- printf "http://%s:%v" (include "bookstore.name" .) .port -}}
{{- end -}}
