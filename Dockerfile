# Spicegate: a small static image.
#   docker build -t spicegate .
#   docker run -p 127.0.0.1:8080:8080 -p 127.0.0.1:50051:50051 spicegate
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/spicegate ./cmd/spicegate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/spicegate /spicegate
# Listen on every interface inside the container; publish ports explicitly.
ENV SPICEGATE_HTTP_ADDR=0.0.0.0:8080 \
    SPICEGATE_GRPC_ADDR=0.0.0.0:50051
EXPOSE 8080 50051
USER nonroot:nonroot
HEALTHCHECK --interval=5s --timeout=3s --retries=20 CMD ["/spicegate", "healthcheck"]
ENTRYPOINT ["/spicegate"]
CMD ["serve"]
