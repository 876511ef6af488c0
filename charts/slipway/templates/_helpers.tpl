{{- define "slipway.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "slipway.labels" -}}
app.kubernetes.io/name: slipway
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "slipway.selector" -}}
app.kubernetes.io/name: slipway
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "slipway.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (required "image.tag or image.digest is required" .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* One secret key as an env var. */}}
{{- define "slipway.secretEnv" -}}
- name: {{ .key }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.existingSecret }}
      key: {{ .key }}
      optional: {{ .optional | default false }}
{{- end -}}

{{/* What every container of the app reads: plain settings and the runtime secrets (never
     the owner's database URL, which only the migrate Job gets). */}}
{{- define "slipway.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "slipway.fullname" . }}
env:
{{- range $key := list "DATABASE_URL" "REDIS_URL" "SECRET_KEY" "SLIPWAY_ENCRYPTION_KEYS" "SLIPWAY_AUDIT_KEYS" }}
  {{- include "slipway.secretEnv" (dict "root" $ "key" $key) | nindent 2 }}
{{- end }}
{{- range $key := list "SLIPWAY_METRICS_TOKEN" "SLIPWAY_LDAP_BIND_PASSWORD" }}
  {{- include "slipway.secretEnv" (dict "root" $ "key" $key "optional" true) | nindent 2 }}
{{- end }}
  - name: PROMETHEUS_MULTIPROC_DIR
    value: /tmp/prometheus
{{- end -}}

{{- define "slipway.pod" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir: {}
{{- end -}}
