{{/*
NetworkPolicy: deny by default, in and out. Ingress: the service port from its real callers
(pods labelled app.kubernetes.io/name in networkPolicy.allowedCallers, plus extraIngressFrom) or from
anywhere (allowFromAnywhere: the gateway behind an ingress controller); the metrics port from
Prometheus. Egress: DNS, the gRPC upstreams (by app.kubernetes.io/name), the backing services of
networkPolicy.egress (PostgreSQL, Redis, RabbitMQ, the LLM), extraEgress.
*/}}
{{- define "flightmesh-lib.networkpolicy" -}}
{{- if .Values.networkPolicy.enabled -}}
{{- $np := .Values.networkPolicy -}}
{{- $port := .Values.ports.grpc | default .Values.ports.http -}}
{{- $metricsPort := .Values.ports.admin | default .Values.ports.http -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "flightmesh-lib.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    {{- if $np.allowFromAnywhere }}
    - ports:
        - port: {{ $port }}
          protocol: TCP
    {{- else if or $np.allowedCallers $np.extraIngressFrom }}
    - from:
        {{- range $np.allowedCallers }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ . }}
        {{- end }}
        {{- with $np.extraIngressFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - port: {{ $port }}
          protocol: TCP
    {{- end }}
    {{- if and $np.metrics.enabled (or (ne $metricsPort $port) (not $np.allowFromAnywhere)) }}
    - from:
        - namespaceSelector:
            {{- toYaml $np.metrics.namespaceSelector | nindent 12 }}
          {{- with $np.metrics.podSelector }}
          podSelector:
            {{- toYaml . | nindent 12 }}
          {{- end }}
      ports:
        - port: {{ $metricsPort }}
          protocol: TCP
    {{- end }}
  egress:
    - to:
        {{- toYaml $np.dns | nindent 8 }}
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- range $app, $u := .Values.upstreams }}
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ $app }}
      ports:
        - port: {{ $u.port }}
          protocol: TCP
    {{- end }}
    {{- range $name, $e := $np.egress }}
    {{- if $e.enabled }}
    - ports:
        - port: {{ $e.port }}
          protocol: TCP
      {{- with $e.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}
