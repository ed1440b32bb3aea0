{{/*
The service's Deployment: restrictive security context, native gRPC probes (HTTP for the gateway),
a preStop pause plus a termination grace period longer than the drain, config from the ConfigMap,
credentials from the Secret, a read-only root filesystem with an in-memory /tmp.
*/}}
{{- define "flightmesh-lib.deployment" -}}
{{- $fullname := include "flightmesh-lib.fullname" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: server
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
  selector:
    matchLabels:
      {{- include "flightmesh-lib.serverSelectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "flightmesh-lib.serverSelectorLabels" . | nindent 8 }}
        app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
        app.kubernetes.io/part-of: flightmesh
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "flightmesh-lib.configData" . | sha256sum }}
        checksum/secret: {{ toJson .Values.secrets | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "flightmesh-lib.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- include "flightmesh-lib.podSecurityContext" . | nindent 8 }}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "flightmesh-lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command: [{{ include "flightmesh-lib.binary" . | quote }}]
          args: ["serve"]
          ports:
            {{- if .Values.ports.grpc }}
            - name: grpc
              containerPort: {{ .Values.ports.grpc }}
              protocol: TCP
            - name: admin
              containerPort: {{ .Values.ports.admin }}
              protocol: TCP
            {{- else }}
            - name: http
              containerPort: {{ .Values.ports.http }}
              protocol: TCP
            {{- if .Values.ports.admin }}
            - name: admin
              containerPort: {{ .Values.ports.admin }}
              protocol: TCP
            {{- end }}
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ $fullname }}
          {{- $secretEnv := include "flightmesh-lib.secretEnv" (dict "ctx" . "secretName" (include "flightmesh-lib.secretName" .)) | trim }}
          {{- if or $secretEnv .Values.extraEnv }}
          env:
            {{- with $secretEnv }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          {{- $l := .Values.probes.liveness }}
          {{- $r := .Values.probes.readiness }}
          {{- if .Values.ports.grpc }}
          # grpc.health.v1: "liveness" stays SERVING while the process lives (a database outage makes
          # the pod unready, never restarts it); "" is readiness (NOT_SERVING while draining or
          # while a required dependency is down).
          livenessProbe:
            grpc:
              port: {{ .Values.ports.grpc }}
              service: liveness
            initialDelaySeconds: {{ $l.initialDelaySeconds }}
            periodSeconds: {{ $l.periodSeconds }}
            timeoutSeconds: {{ $l.timeoutSeconds }}
            failureThreshold: {{ $l.failureThreshold }}
          readinessProbe:
            grpc:
              port: {{ .Values.ports.grpc }}
              service: ""
            initialDelaySeconds: {{ $r.initialDelaySeconds }}
            periodSeconds: {{ $r.periodSeconds }}
            timeoutSeconds: {{ $r.timeoutSeconds }}
            failureThreshold: {{ $r.failureThreshold }}
          {{- else }}
          # /livez is static; /readyz/self is the gateway's own readiness (503 only while draining):
          # one upstream down must not take every gateway pod out of the Service.
          livenessProbe:
            httpGet:
              path: /livez
              port: http
            initialDelaySeconds: {{ $l.initialDelaySeconds }}
            periodSeconds: {{ $l.periodSeconds }}
            timeoutSeconds: {{ $l.timeoutSeconds }}
            failureThreshold: {{ $l.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /readyz/self
              port: http
            initialDelaySeconds: {{ $r.initialDelaySeconds }}
            periodSeconds: {{ $r.periodSeconds }}
            timeoutSeconds: {{ $r.timeoutSeconds }}
            failureThreshold: {{ $r.failureThreshold }}
          {{- end }}
          {{- if and .Values.preStopSleepSeconds (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}
          # Endpoints are removed while the pod waits here; then SIGTERM starts the service's own
          # drain (DRAIN_DELAY NOT_SERVING, then in-flight calls finish).
          lifecycle:
            preStop:
              sleep:
                seconds: {{ .Values.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
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
      {{- if .Values.spreadAcrossNodes }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "flightmesh-lib.serverSelectorLabels" . | nindent 14 }}
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
