package AiRelayFixtures;

# One API and New API databases for the import tests: the tables as
# their GORM models create them (SQLite and MySQL flavours), and rows
# chosen to hit the awkward cases.
#
# One API: model/{user,token,channel,ability,option}.go (songquanpeng)
# New API: the same files in QuantumNous/new-api (soft deletes, multi-key
#          channels, model limits, ModelPrice / CacheRatio).

use strict;
use warnings;

use Exporter 'import';

our @EXPORT = qw(one_api_schema new_api_schema one_api_rows new_api_rows
                 one_api_key new_api_key);

sub one_api_key { 'sk-' . ('A' x 47) . $_[0] }
sub new_api_key { 'sk-' . ('B' x 47) . $_[0] }

sub one_api_schema {
    my ($flavour) = @_;

    return (
"CREATE TABLE `users` (`id` integer,`username` text UNIQUE,`password` text NOT NULL,`display_name` text,`role` integer DEFAULT 1,`status` integer DEFAULT 1,`email` text,`github_id` text,`wechat_id` text,`lark_id` text,`oidc_id` text,`access_token` char(32),`quota` bigint DEFAULT 0,`used_quota` bigint DEFAULT 0,`request_count` integer DEFAULT 0,`group` varchar(32) DEFAULT 'default',`aff_code` varchar(32),`inviter_id` integer,PRIMARY KEY (`id`));",
"CREATE TABLE `tokens` (`id` integer,`user_id` integer,`key` char(48),`status` integer DEFAULT 1,`name` text,`created_time` bigint,`accessed_time` bigint,`expired_time` bigint DEFAULT -1,`remain_quota` bigint DEFAULT 0,`unlimited_quota` numeric DEFAULT false,`used_quota` bigint DEFAULT 0,`models` text,`subnet` text DEFAULT '',PRIMARY KEY (`id`),CONSTRAINT `uni_tokens_key` UNIQUE (`key`));",
"CREATE TABLE `channels` (`id` integer,`type` integer DEFAULT 0,`key` text,`status` integer DEFAULT 1,`name` text,`weight` integer DEFAULT 0,`created_time` bigint,`test_time` bigint,`response_time` integer,`base_url` text DEFAULT '',`other` text,`balance` real,`balance_updated_time` bigint,`models` text,`group` varchar(32) DEFAULT 'default',`used_quota` bigint DEFAULT 0,`model_mapping` varchar(1024) DEFAULT '',`priority` bigint DEFAULT 0,`config` text,`system_prompt` text,PRIMARY KEY (`id`));",
"CREATE TABLE `abilities` (`group` varchar(32),`model` text,`channel_id` integer,`enabled` numeric,`priority` bigint DEFAULT 0,PRIMARY KEY (`group`,`model`,`channel_id`));",
"CREATE TABLE `options` (`key` text,`value` text,PRIMARY KEY (`key`));",
    ) if $flavour eq 'sqlite';

    return (
"CREATE TABLE `users` (`id` bigint AUTO_INCREMENT,`username` varchar(191) UNIQUE,`password` longtext NOT NULL,`display_name` varchar(191),`role` bigint DEFAULT 1,`status` bigint DEFAULT 1,`email` varchar(191),`github_id` varchar(191),`wechat_id` varchar(191),`lark_id` varchar(191),`oidc_id` varchar(191),`access_token` char(32),`quota` bigint DEFAULT 0,`used_quota` bigint DEFAULT 0,`request_count` bigint DEFAULT 0,`group` varchar(32) DEFAULT 'default',`aff_code` varchar(32),`inviter_id` bigint,PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `tokens` (`id` bigint AUTO_INCREMENT,`user_id` bigint,`key` char(48),`status` bigint DEFAULT 1,`name` varchar(191),`created_time` bigint,`accessed_time` bigint,`expired_time` bigint DEFAULT -1,`remain_quota` bigint DEFAULT 0,`unlimited_quota` boolean DEFAULT false,`used_quota` bigint DEFAULT 0,`models` text,`subnet` varchar(191) DEFAULT '',PRIMARY KEY (`id`),UNIQUE INDEX `idx_tokens_key` (`key`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `channels` (`id` bigint AUTO_INCREMENT,`type` bigint DEFAULT 0,`key` text,`status` bigint DEFAULT 1,`name` varchar(191),`weight` bigint unsigned DEFAULT 0,`created_time` bigint,`test_time` bigint,`response_time` bigint,`base_url` varchar(191) DEFAULT '',`other` longtext,`balance` double,`balance_updated_time` bigint,`models` longtext,`group` varchar(32) DEFAULT 'default',`used_quota` bigint DEFAULT 0,`model_mapping` varchar(1024) DEFAULT '',`priority` bigint DEFAULT 0,`config` longtext,`system_prompt` text,PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `abilities` (`group` varchar(32),`model` varchar(191),`channel_id` bigint,`enabled` boolean,`priority` bigint DEFAULT 0,PRIMARY KEY (`group`,`model`,`channel_id`),INDEX `idx_abilities_channel_id` (`channel_id`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `options` (`key` varchar(191),`value` longtext,PRIMARY KEY (`key`)) DEFAULT CHARSET=utf8mb4;",
    );
}

sub one_api_rows {
    my $k = sub { 'A' x 47 . $_[0] };

    return (
# users: admin; alice; bob disabled in a discounted group; carol overdrawn
"INSERT INTO `users` (`id`,`username`,`password`,`role`,`status`,`quota`,`used_quota`,`request_count`,`group`) VALUES
 (1,'root','x',100,1,500000000,0,0,'default'),
 (2,'alice','x',1,1,5000000,1000000,42,'default'),
 (3,'bob','x',1,2,250001,0,0,'vip'),
 (4,'carol','x',1,1,-100,0,0,'default');",
# tokens: plain; unlimited with allowed models; expired; disabled with a
# subnet; a token of a user who does not exist; exhausted
"INSERT INTO `tokens` (`id`,`user_id`,`key`,`status`,`name`,`created_time`,`accessed_time`,`expired_time`,`remain_quota`,`unlimited_quota`,`used_quota`,`models`,`subnet`) VALUES
 (1,2,'" . $k->(1) . "',1,'plain',1700000000,0,-1,1000000,0,500,'',''),
 (2,2,'" . $k->(2) . "',1,'unlimited',1700000001,0,-1,0,1,0,'gpt-4,gpt-3.5-turbo',''),
 (3,3,'" . $k->(3) . "',3,'expired',1700000002,0,1600000000,100,0,0,NULL,''),
 (4,2,'" . $k->(4) . "',2,'disabled',1700000003,0,-1,100,0,0,'','10.0.0.0/8'),
 (5,99,'" . $k->(5) . "',1,'orphan',1700000004,0,-1,100,0,0,'',''),
 (6,4,'" . $k->(6) . "',4,'exhausted',1700000005,0,-1,0,0,0,'','');",
# channels: OpenAI with gpt-4 -> gpt-4-0613; Anthropic disabled behind a
# proxy; Azure; DeepSeek with a mapping chain (One API maps once); Gemini
# in two groups with settings ai-relay ignores
"INSERT INTO `channels` (`id`,`type`,`key`,`status`,`name`,`weight`,`base_url`,`models`,`group`,`model_mapping`,`priority`,`config`,`system_prompt`) VALUES
 (1,1,'sk-up-openai-111111',1,'openai',0,'','gpt-4,gpt-4-0613,gpt-3.5-turbo','default','{\"gpt-4\":\"gpt-4-0613\"}',10,'',''),
 (2,14,'sk-ant-222222222222',2,'claude',0,'https://proxy.example.com/','claude-3-5-sonnet','default','',5,'',''),
 (3,3,'azurekey33333333',1,'azure',0,'https://x.openai.azure.com','gpt-4','default','',0,'',''),
 (4,36,'sk-deepseek-444444',1,'deepseek',0,'','deepseek-chat,gpt-3.5-turbo','default','{\"gpt-3.5-turbo\":\"deepseek-chat\",\"deepseek-chat\":\"deepseek-v3\"}',0,'',''),
 (5,24,'AIzaGemini55555555',1,'gemini',0,NULL,'gemini-1.5-pro','default,vip',NULL,0,'{\"region\":\"\"}','be brief');",
"INSERT INTO `abilities` (`group`,`model`,`channel_id`,`enabled`,`priority`) VALUES
 ('default','gpt-4',1,1,10),('default','gpt-4-0613',1,1,10),
 ('default','gpt-3.5-turbo',1,1,10),('default','claude-3-5-sonnet',2,0,5),
 ('default','gpt-4',3,1,0),('default','deepseek-chat',4,1,0),
 ('default','gpt-3.5-turbo',4,1,0),('default','gemini-1.5-pro',5,1,0),
 ('vip','gemini-1.5-pro',5,1,0);",
"INSERT INTO `options` (`key`,`value`) VALUES
 ('ModelRatio','{\"gpt-4\":15,\"gpt-4-0613\":15,\"gpt-3.5-turbo\":0.25,\"deepseek-chat\":0.07,\"deepseek-v3\":0.135,\"claude-3-5-sonnet\":1.5,\"gemini-1.5-pro\":1.75,\"gpt-4(3)\":14}'),
 ('CompletionRatio','{\"gpt-4\":2,\"gpt-4-0613\":2,\"gpt-3.5-turbo\":3,\"deepseek-chat\":4,\"claude-3-5-sonnet\":5,\"gemini-1.5-pro\":3}'),
 ('GroupRatio','{\"default\":1,\"vip\":0.8}'),
 ('Theme','default');",
    );
}

sub new_api_schema {
    my ($flavour) = @_;

    return (
"CREATE TABLE `users` (`id` integer,`username` text UNIQUE,`password` text NOT NULL,`display_name` text,`role` integer DEFAULT 1,`status` integer DEFAULT 1,`email` text,`github_id` text,`discord_id` text,`oidc_id` text,`wechat_id` text,`telegram_id` text,`access_token` char(32),`quota` integer DEFAULT 0,`used_quota` integer DEFAULT 0,`request_count` integer DEFAULT 0,`group` varchar(64) DEFAULT 'default',`aff_code` varchar(32),`aff_count` integer DEFAULT 0,`aff_quota` integer DEFAULT 0,`aff_history` integer DEFAULT 0,`inviter_id` integer,`deleted_at` datetime,`linux_do_id` text,`setting` text,`remark` varchar(255),`stripe_customer` varchar(64),`created_at` integer,`last_login_at` integer DEFAULT 0,`auth_version` bigint NOT NULL DEFAULT 1,PRIMARY KEY (`id`));",
"CREATE TABLE `tokens` (`id` integer,`user_id` integer,`key` varchar(128),`status` integer DEFAULT 1,`name` text,`created_time` bigint,`accessed_time` bigint,`expired_time` bigint DEFAULT -1,`remain_quota` integer DEFAULT 0,`unlimited_quota` numeric,`model_limits_enabled` numeric,`model_limits` text,`allow_ips` text DEFAULT '',`used_quota` integer DEFAULT 0,`group` text DEFAULT '',`cross_group_retry` numeric,`billing_type` integer DEFAULT 0,`deleted_at` datetime,PRIMARY KEY (`id`),CONSTRAINT `uni_tokens_key` UNIQUE (`key`));",
"CREATE TABLE `channels` (`id` integer,`type` integer DEFAULT 0,`key` text NOT NULL,`openai_organization` text,`test_model` text,`status` integer DEFAULT 1,`name` text,`weight` integer DEFAULT 0,`created_time` bigint,`test_time` bigint,`response_time` integer,`base_url` text DEFAULT '',`other` text,`balance` real,`balance_updated_time` bigint,`models` text,`group` varchar(64) DEFAULT 'default',`used_quota` bigint DEFAULT 0,`model_mapping` text,`status_code_mapping` varchar(1024) DEFAULT '',`priority` bigint DEFAULT 0,`auto_ban` integer DEFAULT 1,`other_info` text,`tag` text,`setting` text,`param_override` text,`header_override` text,`remark` varchar(255),`channel_info` json,`settings` text,PRIMARY KEY (`id`));",
"CREATE TABLE `abilities` (`group` varchar(64),`model` varchar(255),`channel_id` integer,`enabled` numeric,`priority` bigint DEFAULT 0,`weight` integer DEFAULT 0,`tag` text,PRIMARY KEY (`group`,`model`,`channel_id`));",
"CREATE TABLE `options` (`key` text,`value` text,PRIMARY KEY (`key`));",
    ) if $flavour eq 'sqlite';

    return (
"CREATE TABLE `users` (`id` bigint AUTO_INCREMENT,`username` varchar(191) UNIQUE,`password` longtext NOT NULL,`display_name` varchar(191),`role` bigint DEFAULT 1,`status` bigint DEFAULT 1,`email` varchar(191),`github_id` varchar(191),`discord_id` varchar(191),`oidc_id` varchar(191),`wechat_id` varchar(191),`telegram_id` varchar(191),`access_token` char(32),`quota` bigint DEFAULT 0,`used_quota` bigint DEFAULT 0,`request_count` bigint DEFAULT 0,`group` varchar(64) DEFAULT 'default',`aff_code` varchar(32),`aff_count` bigint DEFAULT 0,`aff_quota` bigint DEFAULT 0,`aff_history` bigint DEFAULT 0,`inviter_id` bigint,`deleted_at` datetime(3) NULL,`linux_do_id` varchar(191),`setting` text,`remark` varchar(255),`stripe_customer` varchar(64),`created_at` bigint,`last_login_at` bigint DEFAULT 0,`auth_version` bigint NOT NULL DEFAULT 1,PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `tokens` (`id` bigint AUTO_INCREMENT,`user_id` bigint,`key` varchar(128),`status` bigint DEFAULT 1,`name` varchar(191),`created_time` bigint,`accessed_time` bigint,`expired_time` bigint DEFAULT -1,`remain_quota` bigint DEFAULT 0,`unlimited_quota` boolean,`model_limits_enabled` boolean,`model_limits` text,`allow_ips` varchar(191) DEFAULT '',`used_quota` bigint DEFAULT 0,`group` varchar(191) DEFAULT '',`cross_group_retry` boolean,`billing_type` bigint DEFAULT 0,`deleted_at` datetime(3) NULL,PRIMARY KEY (`id`),UNIQUE INDEX `idx_tokens_key` (`key`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `channels` (`id` bigint AUTO_INCREMENT,`type` bigint DEFAULT 0,`key` longtext NOT NULL,`openai_organization` longtext,`test_model` longtext,`status` bigint DEFAULT 1,`name` varchar(191),`weight` bigint unsigned DEFAULT 0,`created_time` bigint,`test_time` bigint,`response_time` bigint,`base_url` varchar(191) DEFAULT '',`other` longtext,`balance` double,`balance_updated_time` bigint,`models` longtext,`group` varchar(64) DEFAULT 'default',`used_quota` bigint DEFAULT 0,`model_mapping` text,`status_code_mapping` varchar(1024) DEFAULT '',`priority` bigint DEFAULT 0,`auto_ban` bigint DEFAULT 1,`other_info` longtext,`tag` varchar(191),`setting` text,`param_override` text,`header_override` text,`remark` varchar(255),`channel_info` json,`settings` longtext,PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `abilities` (`group` varchar(64),`model` varchar(255),`channel_id` bigint,`enabled` boolean,`priority` bigint DEFAULT 0,`weight` bigint unsigned DEFAULT 0,`tag` varchar(191),PRIMARY KEY (`group`,`model`,`channel_id`)) DEFAULT CHARSET=utf8mb4;",
"CREATE TABLE `options` (`key` varchar(191),`value` longtext,PRIMARY KEY (`key`)) DEFAULT CHARSET=utf8mb4;",
    );
}

sub new_api_rows {
    my $k = sub { 'B' x 47 . $_[0] };

    return (
# users: admin; dave; erin soft-deleted; frank disabled in a pricier group
"INSERT INTO `users` (`id`,`username`,`password`,`status`,`quota`,`used_quota`,`request_count`,`group`,`deleted_at`,`created_at`) VALUES
 (1,'admin','x',1,1000000,0,0,'default',NULL,1700000000),
 (2,'dave','x',1,10000000,200,7,'default',NULL,1700000100),
 (3,'erin','x',1,500000,0,0,'default','2024-01-01 00:00:00',1700000200),
 (4,'frank','x',2,0,0,0,'svip',NULL,1700000300);",
# tokens: limited to two models; unlimited (limits off); limits on with an
# empty list; a deleted user's; a deleted token; expired with allow_ips
"INSERT INTO `tokens` (`id`,`user_id`,`key`,`status`,`name`,`created_time`,`expired_time`,`remain_quota`,`unlimited_quota`,`model_limits_enabled`,`model_limits`,`allow_ips`,`used_quota`,`group`,`deleted_at`) VALUES
 (10,2,'" . $k->(1) . "',1,'limited',1700001000,-1,2000000,0,1,'claude-3-5-sonnet,gpt-4o','',0,'',NULL),
 (11,2,'" . $k->(2) . "',1,'unlimited',1700001001,-1,0,1,0,'ignored','',0,'',NULL),
 (12,2,'" . $k->(3) . "',1,'nothing',1700001002,-1,100,0,1,'','',0,'',NULL),
 (13,3,'" . $k->(4) . "',1,'erins',1700001003,-1,100,0,0,'','',0,'',NULL),
 (14,2,'" . $k->(5) . "',1,'gone',1700001004,-1,100,0,0,'','',0,'','2024-02-02 00:00:00'),
 (15,4,'" . $k->(6) . "',3,'old',1700001005,1700000000,100,0,0,'','1.2.3.4',0,'',NULL);",
# channels: OpenAI multi-key (one key disabled) with a mapping chain;
# DeepSeek auto-disabled; Anthropic with an alias-shaped mapping;
# SunoAPI; broken mapping JSON; Gemini with a mapping cycle
"INSERT INTO `channels` (`id`,`type`,`key`,`status`,`name`,`weight`,`base_url`,`models`,`group`,`model_mapping`,`priority`,`channel_info`,`param_override`) VALUES
 (1,1,'sk-a111111111\nsk-b222222222\nsk-c333333333',1,'openai',5,'','gpt-4o,gpt-4o-mini,chat,dall-e-3','default','{\"chat\":\"gpt-4o-mini\",\"gpt-4o-mini\":\"gpt-4o-mini-2024-07-18\"}',3,'{\"is_multi_key\":true,\"multi_key_size\":3,\"multi_key_status_list\":{\"1\":2}}',NULL),
 (2,43,'sk-deepseek-222222',3,'deepseek',0,'','deepseek-chat','default',NULL,0,NULL,NULL),
 (3,14,'sk-ant-333333333333',1,'claude',0,'https://api.anthropic.com','claude-3-5-sonnet,claude-sonnet','default','{\"claude-sonnet\":\"claude-3-5-sonnet\"}',0,NULL,'{\"temperature\":0}'),
 (4,36,'suno-44444444',1,'suno',0,'','suno_music','default','',0,NULL,NULL),
 (5,1,'sk-broken-555555',1,'broken',0,'','gpt-4o','default','not json',0,NULL,NULL),
 (6,24,'AIzaGemini66666666',1,'gemini',0,'','g1,gemini-2.0-flash','default','{\"g1\":\"g2\",\"g2\":\"g1\"}',0,NULL,NULL);",
"INSERT INTO `abilities` (`group`,`model`,`channel_id`,`enabled`,`priority`,`weight`) VALUES
 ('default','gpt-4o',1,1,3,5),('default','gpt-4o-mini',1,1,3,5),
 ('default','chat',1,1,3,5),('default','dall-e-3',1,1,3,5),
 ('default','deepseek-chat',2,0,0,0),
 ('default','claude-3-5-sonnet',3,1,0,0),('default','claude-sonnet',3,1,0,0),
 ('default','suno_music',4,1,0,0),('default','gpt-4o',5,1,0,0),
 ('default','g1',6,1,0,0),('default','gemini-2.0-flash',6,1,0,0);",
"INSERT INTO `options` (`key`,`value`) VALUES
 ('ModelRatio','{\"gpt-4o\":1.25,\"gpt-4o-mini\":0.075,\"chat\":0.075,\"deepseek-chat\":0.135,\"claude-3-5-sonnet\":1.5,\"gemini-2.0-flash\":0.3333333333333333}'),
 ('CompletionRatio','{\"gpt-4o\":4,\"gpt-4o-mini\":4,\"deepseek-chat\":4,\"claude-3-5-sonnet\":5,\"gemini-2.0-flash\":4}'),
 ('ModelPrice','{\"dall-e-3\":0.04}'),
 ('CacheRatio','{\"claude-3-5-sonnet\":0.1,\"gpt-4o\":0.5}'),
 ('CreateCacheRatio','{\"claude-3-5-sonnet\":1.25}'),
 ('GroupRatio','{\"default\":1,\"svip\":1.5}');",
    );
}

1;
