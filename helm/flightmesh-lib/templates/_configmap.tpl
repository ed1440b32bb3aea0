{{/* ConfigMap of the non-secret settings (see flightmesh-lib.configData), read with envFrom. */}}
{{- define "flightmesh-lib.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
data:
  {{- include "flightmesh-lib.configData" . | nindent 2 }}
{{- end }}
