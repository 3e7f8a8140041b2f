{{/* Release-scoped base name: "huimin" for a release called huimin, else "<release>-huimin". */}}
{{- define "huimin.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
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
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "huimin.configName" -}}
{{- printf "%s-config" (include "huimin.fullname" .) -}}
{{- end -}}

{{- define "huimin.secretName" -}}
{{- default (printf "%s-secrets" (include "huimin.fullname" .)) .Values.secret.existingSecret -}}
{{- end -}}

{{/* Secret env vars; call with (dict "root" $ "private" true|false). Only identity gets the private keys. */}}
{{- define "huimin.secretEnv" -}}
{{- $keys := list "DATABASE_URL" "REDIS_URL" "HUIMIN_TOKEN_PUBLIC_KEY" -}}
{{- if .private -}}
{{- $keys = concat $keys (list "HUIMIN_PII_HMAC_KEY" "HUIMIN_PII_ENCRYPTION_KEY" "HUIMIN_TOKEN_SIGNING_KEY") -}}
{{- end -}}
{{- range $keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "huimin.secretName" $.root }}
      key: {{ . }}
{{- end }}
{{- end -}}
