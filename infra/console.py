"""The web console: its static files in a private bucket, served over HTTPS by CloudFront."""

from pathlib import Path
from typing import Any, cast

from aws_cdk import Acknowledgment, CfnElement, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from infra.standard_function import LOG_RETENTION
from infra.system import CONSOLE_CONFIG_FILE, console_content_security_policy

# CloudFront and S3 access logs: long enough to investigate an incident, then gone.
ACCESS_LOG_EXPIRY = Duration.days(90)
HSTS_MAX_AGE = Duration.days(730)
# Both buckets: never public, encrypted at rest, reachable only over TLS.
PRIVATE_BUCKET: dict[str, Any] = {
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "enforce_ssl": True,
}


class ConsoleHosting(Construct):
    """Serves `console_dir` as it is, plus the config file that tells the console where the API is."""

    def __init__(
        self, scope: Construct, construct_id: str, *, console_dir: Path, api_url: str, api_origin: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.logs = s3.Bucket(
            self,
            "Logs",
            **PRIVATE_BUCKET,
            # CloudFront standard logging writes with ACLs, as the log delivery account.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=ACCESS_LOG_EXPIRY)],
            # Kept after the stack is deleted, for investigations; the lifecycle rule still empties it.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Files",
            **PRIVATE_BUCKET,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="s3/",
            # Only copies of files in the repository: nothing is lost with the stack.
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.response_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="The console's security headers; its scripts may call only the console and the API",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=console_content_security_policy(api_origin), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="VM-X AI Connections web console",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=self.response_headers,
            ),
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        # Our own role rather than CDK's, which would carry AWSLambdaBasicExecutionRole: logs to one group only.
        self.deployment_role = iam.Role(
            self,
            "DeploymentRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Copies the console's files into its bucket and invalidates the distribution",
        )
        deployment_logs = logs.LogGroup(self, "DeploymentLogs", retention=LOG_RETENTION)
        deployment_logs.grant_write(self.deployment_role)
        self.deployment = s3_deployment.BucketDeployment(
            self,
            "Deployment",
            role=self.deployment_role,
            log_group=deployment_logs,
            destination_bucket=self.bucket,
            sources=[
                s3_deployment.Source.asset(str(console_dir)),
                s3_deployment.Source.json_data(CONSOLE_CONFIG_FILE, {"apiUrl": api_url}),
            ],
            # File names carry no content hash: browsers must revalidate, and each deploy invalidates the edge.
            cache_control=[s3_deployment.CacheControl.no_cache()],
            distribution=self.distribution,
            distribution_paths=["/*"],
        )
        self._acknowledge()

    def _deployment_function(self) -> lambda_.Function:
        """The singleton function BucketDeployment creates at the stack's top level, found by our role."""
        return next(
            child
            for child in Stack.of(self).node.children
            if isinstance(child, lambda_.Function) and child.role is self.deployment_role
        )

    @property
    def origin(self) -> str:
        """The console's origin, exactly as browsers send it in the Origin header."""
        return f"https://{self.distribution.distribution_domain_name}"

    def _acknowledge(self) -> None:
        stack = Stack.of(self)
        # The two buckets as cdk-nag names them: CDK's asset bucket by bootstrap qualifier, ours by logical ID.
        qualifier = stack.synthesizer.bootstrap_qualifier
        asset_objects = f"arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-<AWS::AccountId>-<AWS::Region>/*"
        console_bucket_id = stack.resolve(stack.get_logical_id(cast(CfnElement, self.bucket.node.default_child)))
        Validations.of(self.deployment_role).acknowledge(
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[{finding}]",
                    reason="CDK's BucketDeployment grants these itself: reading its one asset bucket, writing "
                    "and pruning the console's bucket, and invalidating (CloudFront has no resource-level "
                    "permissions for invalidations).",
                )
                for finding in (
                    "Action::s3:GetBucket*",
                    "Action::s3:GetObject*",
                    "Action::s3:List*",
                    "Action::s3:Abort*",
                    "Action::s3:DeleteObject*",
                    f"Resource::{asset_objects}",
                    f"Resource::<{console_bucket_id}.Arn>/*",
                    "Resource::*",
                )
            )
        )
        Validations.of(self._deployment_function()).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="The runtime of CDK's BucketDeployment function is chosen by aws-cdk-lib and moves "
                "with it; the function runs only during deployments, on files from this repository.",
            )
        )
        Validations.of(self.logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the access log bucket of the console's bucket and distribution; logging "
                "access to it would need yet another bucket, whose own access would go unlogged.",
            )
        )
        Validations.of(self.distribution).acknowledge(
            Acknowledgment(
                id="AwsSolutions-CFR1",
                reason="The console is public static files with no data in them; who may use the system "
                "is decided by API keys at the API, not by the country a browser is in.",
            ),
            Acknowledgment(
                id="AwsSolutions-CFR2",
                reason="A CloudFront web ACL must be created in us-east-1, outside this regional stack; the "
                "distribution serves only public static files, and the API has its own regional WAF.",
            ),
            Acknowledgment(
                id="AwsSolutions-CFR4",
                reason="The distribution uses the default *.cloudfront.net certificate, for which CloudFront "
                "does not let a minimum TLS version be set; pinning TLS 1.2 needs a custom domain.",
            ),
        )
