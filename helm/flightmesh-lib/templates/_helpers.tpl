{{/*
Names and labels. Every template of this library takes the parent chart's context (`.`): the
binary, the image name and the pods' app.kubernetes.io/name all come from the parent chart.
*/}}

{{/* The service's name: the chart name unless nameOverride; pods carry it as app.kubernetes.io/name. */}}
{{- define "flightmesh-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of every object: the release name (which is the service's DNS name when the release is
named after the service, `helm upgrade --install flights helm/flights`), else <release>-<name>.
Kept to 54 characters so that "<fullname>-headless" stays a valid DNS label.
*/}}
{{- define "flightmesh-lib.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "flightmesh-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every pod of the release, serving or migrating (the NetworkPolicy selects them all). */}}
{{- define "flightmesh-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flightmesh-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels that select the serving pods only (not the migration Job's): Deployment, Services, PDB. */}}
{{- define "flightmesh-lib.serverSelectorLabels" -}}
{{ include "flightmesh-lib.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "flightmesh-lib.labels" -}}
helm.sh/chart: {{ include "flightmesh-lib.chart" . }}
{{ include "flightmesh-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: flightmesh
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "flightmesh-lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flightmesh-lib.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image: repository@sha256:… when image.digest is set (what the release workflow deploys: the
digest its build pushed, immutable), else repository:tag, the tag defaulting to the appVersion.
*/}}
{{- define "flightmesh-lib.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}
{{- end }}

{{/* The binary in the image: /usr/local/bin/<chart name> (the crate's bin has the chart's name). */}}
{{- define "flightmesh-lib.binary" -}}
/usr/local/bin/{{ .Chart.Name }}
{{- end }}

{{/* gRPC services have ports.grpc (+ ports.admin); the gateway has ports.http. */}}
{{- define "flightmesh-lib.isGrpc" -}}
{{- if .Values.ports.grpc }}true{{ end }}
{{- end }}

{{/* The port Prometheus scrapes: the admin port (every service has one; /metrics is not public). */}}
{{- define "flightmesh-lib.metricsPortName" -}}
{{- if .Values.ports.admin }}admin{{ else }}http{{ end }}
{{- end }}

{{/*
Non-secret environment (ConfigMap data, and the migration Job's env): listen addresses from
`ports`, MIGRATE_ON_START=false when the hook Job migrates, the upstream URLs (gRPC DNS targets
`dns:///<service>-headless:<port>` with grpcLoadBalancing=dns: the client re-resolves the headless
Service and balances per request; `http://<service>:<port>` with `connection`, for a mesh),
TRUSTED_PROXIES from ingress.trustedProxies behind the chart's Ingress, then `config` (which wins;
empty values are left out so that the service's own default applies).
*/}}
{{- define "flightmesh-lib.configData" -}}
{{- $env := dict }}
{{- if .Values.ports.grpc }}
{{- $_ := set $env "GRPC_ADDR" (printf "0.0.0.0:%v" .Values.ports.grpc) }}
{{- $_ := set $env "ADMIN_ADDR" (printf "0.0.0.0:%v" .Values.ports.admin) }}
{{- else }}
{{- $_ := set $env "HTTP_ADDR" (printf "0.0.0.0:%v" .Values.ports.http) }}
{{- if .Values.ports.admin }}
{{- $_ := set $env "ADMIN_ADDR" (printf "0.0.0.0:%v" .Values.ports.admin) }}
{{- end }}
{{- end }}
{{- if .Values.migrations }}
{{- $_ := set $env "MIGRATE_ON_START" (ternary "false" "true" (.Values.migrations.enabled | default false)) }}
{{- end }}
{{- $dns := eq .Values.grpcLoadBalancing "dns" }}
{{- range $app, $u := .Values.upstreams }}
{{- $url := ternary (printf "dns:///%s-headless:%v" $u.service $u.port) (printf "http://%s:%v" $u.service $u.port) $dns }}
{{- $_ := set $env $u.env $url }}
{{- end }}
{{- if and .Values.ingress .Values.ingress.enabled .Values.ingress.trustedProxies }}
{{- $_ := set $env "TRUSTED_PROXIES" (join "," .Values.ingress.trustedProxies) }}
{{- end }}
{{- range $k, $v := .Values.config }}
{{- if and (not (kindIs "invalid" $v)) (ne (toString $v) "") }}
{{- $_ := set $env $k (toString $v) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* Name of the Secret the pods read: the existing one, or the chart's. */}}
{{- define "flightmesh-lib.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "flightmesh-lib.fullname" .) }}
{{- end }}

{{/*
Fails the install when the chart renders its own Secret and a credential it needs is empty: the
defaults hold no connection URL (a superuser or guest:guest default would only work on a laptop).
Every key of secrets.values is required unless listed in secrets.optional or secrets.generate.
*/}}
{{- define "flightmesh-lib.requireSecrets" -}}
{{- $s := .Values.secrets }}
{{- if not $s.existingSecret }}
{{- $what := dict
  "DATABASE_URL" (printf "the PostgreSQL URL of the %s service's own role, postgres://<role>:<password>@<host>:5432/<database> (docs/operations.md, \"Database roles\")" .Chart.Name)
  "AMQP_URL" "the RabbitMQ URL with the mesh's own user and password (not guest), amqp://<user>:<password>@<host>:5672/<vhost>"
  "REDIS_URL" "the Redis URL with its password, redis://:<password>@<host>:6379" }}
{{- $missing := list }}
{{- range $key, $val := $s.values }}
{{- if and (not ($val | default "")) (not (has $key ($s.optional | default list))) (not (has $key ($s.generate | default list))) }}
{{- $missing = append $missing (printf "secrets.values.%s is required: %s" $key (get $what $key | default "a credential of the service")) }}
{{- end }}
{{- end }}
{{- if $missing }}
{{- fail (printf "%s (or name a Secret holding the credentials in secrets.existingSecret)" (join "; " $missing)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Data of the chart's Secret (base64): every non-empty value of secrets.values; a key listed in
secrets.generate with no value gets 48 random characters, kept across upgrades (read back from the
release's Secret with lookup). Args: dict "ctx" . "lookupName" <Secret to reuse generated keys from>.
*/}}
{{- define "flightmesh-lib.secretData" -}}
{{- $ctx := .ctx }}
{{- $old := dict }}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace .lookupName }}
{{- if $existing }}{{ $old = $existing.data | default dict }}{{ end }}
{{- range $key, $val := $ctx.Values.secrets.values }}
{{- if and (not (kindIs "invalid" $val)) (ne (toString $val) "") }}
{{ $key }}: {{ toString $val | b64enc | quote }}
{{- else if has $key ($ctx.Values.secrets.generate | default list) }}
{{ $key }}: {{ get $old $key | default (randAlphaNum 48 | b64enc) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
env entries reading the secret keys. With an existing Secret every key of secrets.values is read
(those in secrets.optional may be missing), from the key secrets.existingSecretKeys maps it to
(the services share one Secret and each database role has its own URL: flights reads
DATABASE_URL from FLIGHTS_DATABASE_URL); with the chart's Secret only the keys it holds.
Args: dict "ctx" . "secretName" <name>.
*/}}
{{- define "flightmesh-lib.secretEnv" -}}
{{- $ctx := .ctx }}
{{- $name := .secretName }}
{{- $s := $ctx.Values.secrets }}
{{- range $key, $val := $s.values }}
{{- if or $s.existingSecret (and (not (kindIs "invalid" $val)) (ne (toString $val) "")) (has $key ($s.generate | default list)) }}
{{- $ref := $key }}
{{- if $s.existingSecret }}{{ $ref = get ($s.existingSecretKeys | default dict) $key | default $key }}{{ end }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $ref }}
      {{- if and $s.existingSecret (has $key ($s.optional | default list)) }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The container's security context, shared by the Deployment and the migration Job. */}}
{{- define "flightmesh-lib.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "flightmesh-lib.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}
