{{/* PodDisruptionBudget: voluntary evictions (node drains) take at most maxUnavailable pods at once. */}}
{{- define "flightmesh-lib.pdb" -}}
{{- if .Values.podDisruptionBudget.enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "flightmesh-lib.serverSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}
