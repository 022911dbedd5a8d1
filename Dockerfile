# syntax=docker/dockerfile:1

# Build stage: a static, stripped gpuxd.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/gpuxd ./cmd/gpuxd

# Final stage: no shell, no package manager, non-root.
# Health checks live in docker-compose.yml and use `gpuxd --healthcheck URL`.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gpuxd /gpuxd
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/gpuxd"]
