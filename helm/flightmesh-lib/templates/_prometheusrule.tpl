{{/*
Optional PrometheusRule (Prometheus Operator CRD): the service's SLO recording and alerting rules,
kept as a plain Prometheus rule file in the chart (rules/slo.yaml) so that `promtool check rules`
and `promtool test rules` read the same file the cluster gets.
*/}}
{{- define "flightmesh-lib.prometheusrule" -}}
{{- if .Values.prometheusRule.enabled -}}
{{- $rules := .Files.Get "rules/slo.yaml" | fromYaml -}}
{{- if not $rules.groups -}}
{{- fail "prometheusRule.enabled needs the chart's rules/slo.yaml" -}}
{{- end }}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
    {{- with .Values.prometheusRule.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  groups:
    {{- toYaml $rules.groups | nindent 4 }}
{{- end }}
{{- end }}
