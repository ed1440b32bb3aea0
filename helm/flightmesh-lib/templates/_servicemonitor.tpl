{{/*
Optional ServiceMonitor (Prometheus Operator CRD) scraping /metrics on the admin port (the gateway's
too: its public port does not serve /metrics in production). Selects the ClusterIP Service only, not
the headless one.
*/}}
{{- define "flightmesh-lib.servicemonitor" -}}
{{- if .Values.serviceMonitor.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
    {{- with .Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "flightmesh-lib.selectorLabels" . | nindent 6 }}
    matchExpressions:
      - key: flightmesh.io/headless
        operator: DoesNotExist
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: {{ include "flightmesh-lib.metricsPortName" . }}
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end }}
