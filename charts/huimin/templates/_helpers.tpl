{{/* Release-scoped base name: "huimin" for a release called huimin, else "<release>-huimin". */}}
{{- define "huimin.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "huimin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: huimin
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "name" "identity"). */}}
{{- define "huimin.selectorLabels" -}}
app.kubernetes.io/name: huimin
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "huimin.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "huimin.configName" -}}
{{- printf "%s-config" (include "huimin.fullname" .) -}}
{{- end -}}

{{- define "huimin.secretName" -}}
{{- default (printf "%s-secrets" (include "huimin.fullname" .)) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "huimin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "huimin.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* One environment variable from the Secret; call with (dict "root" $ "key" "X" "env" "Y" "optional" bool). */}}
{{- define "huimin.secretEnv" -}}
- name: {{ default .key .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "huimin.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* The container's hardening, shared by the Deployments and the migrate Job. */}}
{{- define "huimin.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/* The URL scheme of gRPC peers: https when TLS between services is on. */}}
{{- define "huimin.peerScheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* A NetworkPolicy egress rule to `to` (possibly empty: anywhere) on TCP `port`. */}}
{{- define "huimin.egressRule" -}}
- ports:
    - port: {{ .port }}
      protocol: TCP
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
