{{/*
The Secret of the service's credentials (values base64-encoded with b64enc). Not rendered when
secrets.existingSecret names a Secret managed elsewhere (sealed-secrets, external-secrets, kubectl).
*/}}
{{- define "flightmesh-lib.secret" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- include "flightmesh-lib.requireSecrets" . -}}
{{- $name := include "flightmesh-lib.fullname" . -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
type: Opaque
{{- $data := include "flightmesh-lib.secretData" (dict "ctx" . "lookupName" $name) | trim }}
{{- if $data }}
data:
  {{- $data | nindent 2 }}
{{- else }}
data: {}
{{- end }}
{{- end }}
{{- end }}
