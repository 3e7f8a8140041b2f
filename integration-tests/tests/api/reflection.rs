//! A generic gRPC client without .proto files lists and calls services via
//! server reflection.

use prost::{
    Message as _,
    bytes::{Buf as _, BufMut as _, Bytes},
};
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::helpers::TestApp;

async fn reflect(app: &TestApp, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    responses
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[tokio::test]
async fn reflection_lists_identity_and_health() {
    let app = TestApp::spawn().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&app, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"huimin.identity.v1.IdentityService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    // Only what this process serves: notify's contract exists, its service does not yet.
    assert!(
        !names.iter().any(|name| name.contains("NotifyService")),
        "{names:?}"
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    for name in names.iter().filter(|name| name.starts_with("huimin.")) {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: name.clone(),
            })
            .await
            .map(|r| r.into_inner().status);
        assert!(
            status.is_ok(),
            "{name} is listed but health does not know it"
        );
    }
}

/// Raw protobuf bytes in and out: the client knows nothing of the messages.
#[derive(Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::test]
async fn generic_client_calls_list_divisions_from_reflected_descriptors() {
    let app = TestApp::spawn().await;
    // As grpcurl does: the file declaring the service, then every import by name.
    let mut set = prost_types::FileDescriptorSet::default();
    let mut wanted = vec![MessageRequest::FileContainingSymbol(
        "huimin.identity.v1.IdentityService".into(),
    )];
    while let Some(request) = wanted.pop() {
        let MessageResponse::FileDescriptorResponse(files) = reflect(&app, request).await else {
            panic!("expected file descriptors");
        };
        for bytes in files.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            if set.file.iter().any(|f| f.name == file.name) {
                continue;
            }
            for dependency in &file.dependency {
                if !set.file.iter().any(|f| f.name.as_ref() == Some(dependency)) {
                    wanted.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
            set.file.push(file);
        }
    }
    // Dependencies must come before their dependents.
    set.file.reverse();
    let pool = DescriptorPool::from_file_descriptor_set(set).unwrap();
    let service = pool
        .get_service_by_name("huimin.identity.v1.IdentityService")
        .unwrap();
    let method = service
        .methods()
        .find(|m| m.name() == "ListDivisions")
        .unwrap();
    let mut request = DynamicMessage::new(method.input());
    request.set_field_by_name("parent_code", Value::String("450923106".into()));

    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.unwrap();
    let path =
        http::uri::PathAndQuery::from_static("/huimin.identity.v1.IdentityService/ListDivisions");
    let response = grpc
        .unary(
            tonic::Request::new(Bytes::from(request.encode_to_vec())),
            path,
            RawCodec,
        )
        .await
        .unwrap()
        .into_inner();
    let response = DynamicMessage::decode(method.output(), response).unwrap();

    let divisions = response.get_field_by_name("divisions").unwrap();
    let divisions = divisions.as_list().unwrap();
    let names: Vec<String> = divisions
        .iter()
        .map(|d| {
            d.as_message()
                .unwrap()
                .get_field_by_name("name")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(names.contains(&"大旺村".to_owned()), "{names:?}");
}
