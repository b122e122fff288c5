{{/* The chart name, or nameOverride. */}}
{{- define "novasphere-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object names: fullnameOverride, else the release name (with the chart name unless it already contains it). */}}
{{- define "novasphere-api.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "novasphere-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "novasphere-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "novasphere-api.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "novasphere-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "novasphere-api.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Envoy's listener certificate Secret. */}}
{{- define "novasphere-api.tlsSecret" -}}
{{- if .Values.tls.existingSecret }}{{ .Values.tls.existingSecret }}{{ else }}{{ include "novasphere-api.fullname" . }}-tls{{ end }}
{{- end }}

{{/* A number as the server parses it: values arrive as float64, and 4194304 would print as 4.194304e+06. */}}
{{- define "novasphere-api.number" -}}
{{- if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/* Addresses per network mode: unix sockets in the shared emptyDir (local), or TCP (production: the gRPC port is
     open to the kubelet's grpc readiness probe, the admin port to the liveness probe and Prometheus). */}}
{{- define "novasphere-api.grpcListen" -}}
{{- if .Values.localNode.enabled }}unix:/run/novasphere/grpc.sock{{ else }}0.0.0.0:50051{{ end }}
{{- end }}
{{- define "novasphere-api.consoleListen" -}}
{{- if .Values.localNode.enabled }}unix:/run/novasphere/console.sock{{ else }}127.0.0.1:50052{{ end }}
{{- end }}
{{- define "novasphere-api.adminListen" -}}
{{- if .Values.localNode.enabled }}unix:/run/novasphere/admin.sock{{ else }}0.0.0.0:9464{{ end }}
{{- end }}
{{- define "novasphere-api.grpcUpstream" -}}
{{- if .Values.localNode.enabled }}unix:/run/novasphere/grpc.sock{{ else }}127.0.0.1:50051{{ end }}
{{- end }}
{{- define "novasphere-api.consoleUpstream" -}}
{{- if .Values.localNode.enabled }}unix:/run/novasphere/console.sock{{ else }}127.0.0.1:50052{{ end }}
{{- end }}
{{- define "novasphere-api.envoyListen" -}}
{{- if .Values.localNode.enabled }}127.0.0.1{{ else }}0.0.0.0{{ end }}:{{ .Values.envoy.port }}
{{- end }}

{{/* The pod's termination grace: the preStop sleep, the API's drain and its grace for in-flight calls, and 5 s. */}}
{{- define "novasphere-api.terminationGrace" -}}
{{- if .Values.terminationGracePeriodSeconds }}{{ .Values.terminationGracePeriodSeconds }}
{{- else }}{{ add (mul 2 (int64 .Values.api.drainSeconds)) (int64 (ceil .Values.api.shutdownGraceSeconds)) 5 }}
{{- end }}
{{- end }}

{{- define "novasphere-api.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
{{- end }}

{{/*
How long a container may take to start before its liveness probe counts: Envoy's first configuration (the REST
transcoder, rest.lua) and the API's informers take seconds, tens of them on a loaded node; a liveness probe alone
would restart them in a loop there. Two minutes by default (startupSeconds).
*/}}
{{- define "novasphere-api.startupProbeTiming" -}}
periodSeconds: 2
failureThreshold: {{ div (int .Values.startupSeconds) 2 }}
{{- end }}
