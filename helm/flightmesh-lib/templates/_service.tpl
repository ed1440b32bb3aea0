{{/* The service's ports, shared by the ClusterIP and the headless Service. */}}
{{- define "flightmesh-lib.servicePorts" -}}
{{- if .Values.ports.grpc }}
- name: grpc
  port: {{ .Values.ports.grpc }}
  targetPort: grpc
  protocol: TCP
  appProtocol: kubernetes.io/h2c
- name: admin
  port: {{ .Values.ports.admin }}
  targetPort: admin
  protocol: TCP
  appProtocol: http
{{- else }}
- name: http
  port: {{ .Values.ports.http }}
  targetPort: http
  protocol: TCP
  appProtocol: http
{{- if .Values.ports.admin }}
- name: admin
  port: {{ .Values.ports.admin }}
  targetPort: admin
  protocol: TCP
  appProtocol: http
{{- end }}
{{- end }}
{{- end }}

{{/* The ClusterIP Service (balances connections: callers with grpcLoadBalancing=connection + a mesh). */}}
{{- define "flightmesh-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
  {{- with .Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "flightmesh-lib.serverSelectorLabels" . | nindent 4 }}
  ports:
    {{- include "flightmesh-lib.servicePorts" . | trim | nindent 4 }}
{{- end }}

{{/*
The headless Service "<fullname>-headless" of a gRPC service: its DNS name resolves to every ready
pod, so callers with grpcLoadBalancing=dns (URL dns:///<fullname>-headless:<port>) re-resolve it and
spread requests over all replicas (a ClusterIP Service would pin each long-lived HTTP/2 connection
to one pod).
*/}}
{{- define "flightmesh-lib.headlessService" -}}
{{- if .Values.ports.grpc -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "flightmesh-lib.fullname" . }}-headless
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flightmesh-lib.labels" . | nindent 4 }}
    flightmesh.io/headless: "true"
spec:
  type: ClusterIP
  clusterIP: None
  publishNotReadyAddresses: false
  selector:
    {{- include "flightmesh-lib.serverSelectorLabels" . | nindent 4 }}
  ports:
    {{- include "flightmesh-lib.servicePorts" . | trim | nindent 4 }}
{{- end }}
{{- end }}
