{{/*
Schema migrations as a pre-install/pre-upgrade hook Job running "<bin> migrate". Hooks run before
the release's ConfigMap and Secret exist (first install), so the Job carries its settings inline
and reads its credentials from a hook Secret of its own (or the existing Secret). It runs under the
namespace's default ServiceAccount with no token.
*/}}
{{- define "flightmesh-lib.migrationSecret" -}}
{{- if and .Values.migrations .Values.migrations.enabled (not .Values.secrets.existingSecret) -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}-migrate
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
type: Opaque
{{- $data := include "flightmesh-lib.secretData" (dict "ctx" . "lookupName" (include "flightmesh-lib.fullname" .)) | trim }}
{{- if $data }}
data:
  {{- $data | nindent 2 }}
{{- else }}
data: {}
{{- end }}
{{- end }}
{{- end }}

{{- define "flightmesh-lib.migrationJob" -}}
{{- if and .Values.migrations .Values.migrations.enabled -}}
{{- $fullname := include "flightmesh-lib.fullname" . -}}
{{- $secretName := .Values.secrets.existingSecret | default (printf "%s-migrate" $fullname) -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $fullname }}-migrate
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ .Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ .Values.migrations.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .Values.migrations.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "flightmesh-lib.selectorLabels" . | nindent 8 }}
        app.kubernetes.io/part-of: flightmesh
        app.kubernetes.io/component: migrate
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "flightmesh-lib.podSecurityContext" . | nindent 8 }}
      containers:
        - name: migrate
          image: {{ include "flightmesh-lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command: [{{ include "flightmesh-lib.binary" . | quote }}]
          args: ["migrate"]
          env:
            {{- range $k, $v := (include "flightmesh-lib.configData" . | fromYaml) }}
            - name: {{ $k }}
              value: {{ $v | quote }}
            {{- end }}
            {{- include "flightmesh-lib.secretEnv" (dict "ctx" . "secretName" $secretName) | trim | nindent 12 }}
          resources:
            {{- toYaml .Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- include "flightmesh-lib.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 16Mi
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
